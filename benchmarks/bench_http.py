"""HTTP transport overhead on httpx2: client CPU per request, pynector vs raw httpx2.

A cheap keep-alive HTTP/1.1 server runs in a separate process so that the
client is the bottleneck. The client process sends the same GET requests
through ``Pynector(transport_type="http", engine="httpx2", enable_telemetry=False)``
and through a bare ``httpx2.AsyncClient`` (same pool limits), at concurrency 1, 10 and 100
(that many workers, each sending requests one after another), and reports the
client's CPU time per request (``time.process_time``) as a ratio. Rounds
alternate between the two sides and the median round counts. A last line does
the same for ``batch_request(max_concurrency=100)``.

    uv run python benchmarks/bench_http.py                  # default size
    uv run python benchmarks/bench_http.py --n 500 --rounds 3   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from _loopback import started, workers

TARGET = 1.15


# -- the client -------------------------------------------------------------------


async def measure(url: str, n: int, rounds: int) -> list[tuple[str, float, float]]:
    import httpx2

    from pynector import Pynector

    rows = []
    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    async with (
        httpx2.AsyncClient(base_url=url, limits=limits) as raw,
        Pynector(
            transport_type="http", engine="httpx2", base_url=url, enable_telemetry=False
        ) as client,
    ):

        async def raw_get() -> object:
            response = await raw.get("/x")
            response.raise_for_status()
            return response

        async def pynector_get() -> object:
            return await client.request({"path": "/x", "method": "GET"})

        async def cpu(run: Callable[[], Awaitable[None]]) -> float:
            start = time.process_time()
            await run()
            return (time.process_time() - start) / n * 1e6

        for concurrency in (1, 10, 100):
            # Warm up both sides (connections, caches) before measuring.
            await workers(raw_get, 200, concurrency)
            await workers(pynector_get, 200, concurrency)
            raw_us: list[float] = []
            ours_us: list[float] = []
            for index in range(rounds):
                sides = [(raw_get, raw_us), (pynector_get, ours_us)]
                for send, samples in sides if index % 2 == 0 else sides[::-1]:
                    run = functools.partial(workers, send, n, concurrency)
                    samples.append(await cpu(run))
            rows.append((f"request, concurrency {concurrency}", *_medians(raw_us, ours_us)))

        requests: list[tuple[dict[str, str], dict[str, object]]] = [
            ({"path": "/x", "method": "GET"}, {}) for _ in range(n)
        ]

        async def batch() -> None:
            await client.batch_request(requests, max_concurrency=100)

        await batch()
        raw_us, ours_us = [], []
        for _ in range(rounds):
            raw_us.append(await cpu(lambda: workers(raw_get, n, 100)))
            ours_us.append(await cpu(batch))
        rows.append(("batch_request, max_concurrency 100", *_medians(raw_us, ours_us)))
    return rows


def _medians(raw_us: list[float], ours_us: list[float]) -> tuple[float, float]:
    return statistics.median(raw_us), statistics.median(ours_us)


def main() -> int:
    # The baseline is pynector with no plugin: an installed telemetry plugin
    # (measured in bench_telemetry.py) would otherwise join every request.
    os.environ["PYNECTOR_PLUGINS"] = ""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side (median wins)")
    args = parser.parse_args()
    with started() as url:
        rows = asyncio.run(measure(url, args.n, args.rounds))
    import httpx2

    from pynector._plugins import hooks

    plugins = "none" if hooks() is None else "installed (telemetry off)"
    print(
        f"HTTP transport: client CPU per request, Pynector(transport_type='http', "
        f"engine='httpx2', enable_telemetry=False) vs raw httpx2 {httpx2.__version__}; "
        f"{args.n} requests x {args.rounds} rounds per side; "
        f"Python {sys.version.split()[0]}, asyncio, {os.cpu_count()} cores; plugins: {plugins}"
    )
    print(f"{'scenario':<38}{'httpx2 us':>11}{'pynector us':>13}{'ratio':>8}")
    worst = 0.0
    for name, raw_us, ours_us in rows:
        ratio = ours_us / raw_us
        worst = max(worst, ratio)
        print(f"{name:<38}{raw_us:>11.1f}{ours_us:>13.1f}{ratio:>7.2f}x")
    verdict = "within" if worst <= TARGET else "ABOVE"
    print(f"worst ratio {worst:.2f}x: {verdict} the {TARGET:.2f}x target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
