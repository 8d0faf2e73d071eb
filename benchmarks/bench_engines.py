"""HTTP engines: client CPU per request, Pynector on aiohttp vs raw aiohttp and raw httpx2.

A cheap keep-alive HTTP/1.1 server runs in a separate process pinned to one
core; the client process is pinned to the other (``os.sched_setaffinity``), so
the client is the bottleneck and the two never share a core. The client sends
the same GET requests through

* raw aiohttp: one ``aiohttp.ClientSession`` (a 100-connection pool), each
  request ``async with session.get(url) as r: await r.read()``;
* raw httpx2: one ``httpx2.AsyncClient`` (a 100-connection pool), ``await
  client.get(url)``;
* ``Pynector(transport_type="http", engine="aiohttp", enable_telemetry=False)``
  (Pynector on httpx2 against raw httpx2 is ``bench_http.py``),

at concurrency 1, 10 and 100 (that many workers, each sending its requests one
after another), and reports the client process's CPU time per request
(``time.process_time``). Rounds rotate the order of the sides; the median round
counts, and the spread (lowest and highest round) of the main ratio is shown.
Target: Pynector on aiohttp costs at most 1.2x raw aiohttp at every concurrency.

    uv run python benchmarks/bench_engines.py                    # default size
    uv run python benchmarks/bench_engines.py --n 500 --rounds 3   # quick
    uv run python benchmarks/bench_engines.py --sdk --n 400        # the SDKs' aiohttp client
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from _loopback import started, workers

TARGET = 1.2
CONCURRENCY = (1, 10, 100)
SIDES = ("raw aiohttp", "raw httpx2", "pynector aiohttp")
Send = Callable[[], Awaitable[object]]


# -- the client --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def aiohttp_sides(url: str) -> AsyncIterator[tuple[Send, Send]]:
    """The same GET through raw aiohttp and through Pynector on aiohttp: two senders."""
    import aiohttp

    from pynector import Pynector

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session,
        Pynector(
            transport_type="http", engine="aiohttp", base_url=url, enable_telemetry=False
        ) as ours_aiohttp,
    ):
        target = f"{url}/x"
        request = {"path": "/x"}

        async def raw_aiohttp_get() -> object:
            async with session.get(target) as response:
                response.raise_for_status()
                return await response.read()

        async def ours_aiohttp_get() -> object:
            return await ours_aiohttp.request(request)

        yield raw_aiohttp_get, ours_aiohttp_get


async def measure(url: str, n: int, rounds: int) -> dict[int, dict[str, list[float]]]:
    """CPU microseconds per request, per concurrency and side, one value per round."""
    import httpx2

    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    async with (
        aiohttp_sides(url) as (raw_aiohttp_get, ours_aiohttp_get),
        httpx2.AsyncClient(limits=limits) as raw_httpx2,
    ):
        target = f"{url}/x"

        async def raw_httpx2_get() -> object:
            response = await raw_httpx2.get(target)
            response.raise_for_status()
            return response

        sends = dict(zip(SIDES, (raw_aiohttp_get, raw_httpx2_get, ours_aiohttp_get), strict=True))
        results: dict[int, dict[str, list[float]]] = {}
        for concurrency in CONCURRENCY:
            for send in sends.values():  # warm up: connections, caches
                await workers(send, max(200, 2 * concurrency), concurrency)
            samples: dict[str, list[float]] = {side: [] for side in SIDES}
            for index in range(rounds):
                order = SIDES[index % len(SIDES) :] + SIDES[: index % len(SIDES)]
                for side in order:
                    gc.collect()  # no side pays for another's garbage
                    start = time.process_time()
                    await workers(sends[side], n, concurrency)
                    samples[side].append((time.process_time() - start) / n * 1e6)
            results[concurrency] = samples
    return results


# -- the SDKs' own aiohttp client (is it worth using in the sdk transport?) ---------


def _sdk_client(provider: str, port: int, engine: str) -> Any:
    """The SDK's async client as the sdk transport configures it, on the given HTTP client."""
    import httpx2

    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    if provider == "openai":
        import openai

        http = (
            openai.DefaultAioHttpClient(limits=limits)
            if engine == "aiohttp"
            else openai.DefaultAsyncHttpxClient(limits=limits)
        )
        return openai.AsyncOpenAI(
            api_key="sk-bench-0000",
            base_url=f"http://127.0.0.1:{port}/v1",
            max_retries=0,
            http_client=http,
        )
    import anthropic

    http = (
        anthropic.DefaultAioHttpClient(limits=limits)
        if engine == "aiohttp"
        else anthropic.DefaultAsyncHttpxClient(limits=limits)
    )
    return anthropic.AsyncAnthropic(
        api_key="sk-bench-0000",
        base_url=f"http://127.0.0.1:{port}",
        max_retries=0,
        open_telemetry={"traces": {"enabled": False}, "propagation": False},
        http_client=http,
    )


async def measure_sdk(port: int, n: int, rounds: int) -> list[tuple[str, int, float, float]]:
    """CPU microseconds per SDK call on the SDK's default (httpx2) and aiohttp clients."""
    from bench_sdk import CHAT, MESSAGE

    rows = []
    for provider in ("openai", "anthropic"):
        clients = {engine: _sdk_client(provider, port, engine) for engine in ("httpx2", "aiohttp")}
        data = CHAT if provider == "openai" else MESSAGE

        def call(client: Any, data: dict[str, Any] = data, provider: str = provider) -> Any:
            if provider == "openai":
                return client.chat.completions.create(**data)
            return client.messages.create(**data)

        try:
            for concurrency in (1, 10):
                sends = {
                    engine: functools.partial(call, client) for engine, client in clients.items()
                }
                for send in sends.values():
                    await workers(send, 50, concurrency)
                samples: dict[str, list[float]] = {engine: [] for engine in sends}
                for index in range(rounds):
                    order = list(sends) if index % 2 == 0 else list(sends)[::-1]
                    for engine in order:
                        gc.collect()
                        start = time.process_time()
                        await workers(sends[engine], n, concurrency)
                        samples[engine].append((time.process_time() - start) / n * 1e6)
                rows.append(
                    (
                        provider,
                        concurrency,
                        statistics.median(samples["httpx2"]),
                        statistics.median(samples["aiohttp"]),
                    )
                )
        finally:
            for client in clients.values():
                await client.close()
    return rows


def _sdk_main(args: argparse.Namespace, client_core: int | None, server_core: int) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sdk_server = [sys.executable, os.path.join(here, "bench_sdk.py"), "--serve"]
    with started(sdk_server, None if server_core < 0 else server_core) as url:
        port = int(url.rpartition(":")[2])
        rows = asyncio.run(measure_sdk(port, args.n, args.rounds))
    import anthropic
    import openai

    print(
        f"\nSDK calls: client CPU per call (us), the SDK's default httpx2 client vs its "
        f"DefaultAioHttpClient; openai {openai.__version__}, anthropic {anthropic.__version__}; "
        f"{args.n} calls x {args.rounds} rounds per side"
    )
    print(f"{'provider':<12}{'concurrency':<13}{'httpx2':>10}{'aiohttp':>10}{'aiohttp/httpx2':>16}")
    for provider, concurrency, httpx2_us, aiohttp_us in rows:
        print(
            f"{provider:<12}{concurrency:<13}{httpx2_us:>10.1f}{aiohttp_us:>10.1f}"
            f"{aiohttp_us / httpx2_us:>15.2f}x"
        )


def main() -> int:
    # No plugins: an installed telemetry plugin would join every Pynector request
    # (measured in bench_telemetry.py); the raw sides have none.
    os.environ["PYNECTOR_PLUGINS"] = ""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side (median wins)")
    parser.add_argument(
        "--sdk",
        action="store_true",
        help="instead: the openai/anthropic SDKs on their httpx2 vs their aiohttp client",
    )
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    client_core, server_core = (cores[0], cores[1]) if len(cores) > 1 else (None, -1)
    if args.sdk:
        if client_core is not None:
            os.sched_setaffinity(0, {client_core})
        _sdk_main(args, client_core, server_core)
        return 0
    with started(core=None if server_core < 0 else server_core) as url:
        if client_core is not None:
            os.sched_setaffinity(0, {client_core})
        load = os.getloadavg()[0]
        results = asyncio.run(measure(url, args.n, args.rounds))
    import aiohttp
    import httpx2

    pinned = (
        f"client on core {client_core}, server on core {server_core}"
        if client_core is not None
        else "one core: not pinned"
    )
    print(
        f"HTTP engines: client CPU per request (us); {args.n} requests x {args.rounds} rounds "
        f"per side; Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, httpx2 "
        f"{httpx2.__version__}; {pinned}; load average {load:.2f} at start"
    )
    header = "".join(f"{side:>18}" for side in SIDES)
    print(f"{'concurrency':<12}{header}{'ours/aiohttp':>14}{'  spread':<16}{'httpx2/ours':>12}")
    worst = 0.0
    for concurrency, samples in results.items():
        medians = {side: statistics.median(values) for side, values in samples.items()}
        ratio = medians["pynector aiohttp"] / medians["raw aiohttp"]
        per_round = [
            ours / raw
            for ours, raw in zip(samples["pynector aiohttp"], samples["raw aiohttp"], strict=True)
        ]
        spread = f"  {min(per_round):.2f}-{max(per_round):.2f}x"
        cheaper = medians["raw httpx2"] / medians["pynector aiohttp"]
        worst = max(worst, ratio)
        cells = "".join(f"{medians[side]:>18.1f}" for side in SIDES)
        print(f"{concurrency:<12}{cells}{ratio:>13.2f}x{spread:<16}{cheaper:>11.2f}x")
    verdict = "within" if worst <= TARGET else "ABOVE"
    print(f"worst ratio to raw aiohttp {worst:.2f}x: {verdict} the {TARGET:.2f}x target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
