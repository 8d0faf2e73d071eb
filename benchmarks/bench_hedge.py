"""Tail: hedged requests against a server whose slow tail is 20 times its median.

A loopback server in its own process answers each request after a latency
drawn for it: most take about ``--median`` (10 ms, a little spread), and 2%
take 20 times the median (a slow replica, a lost packet). It counts every
request it receives, hedges included, and how many the client hung up on.

The same run of requests (a fixed set of workers, one request after another
each) is sent twice: by a plain client, and by a client with
``config={"hedge_after": "p95"}``. Reported: the latency percentiles the
caller saw, the p99 of the plain run over the hedged run (target >= 3) and the
extra requests the server counted for the hedged run, as a share of the
requests made (target <= 0.10). The hedged client learns its p95 from its own
calls, so its first calls (before it has 40 latencies) are not hedged; they
are part of the figures.

    uv run python benchmarks/bench_hedge.py            # about 15 s
    uv run python benchmarks/bench_hedge.py --quick    # about 6 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

import anyio
from _loopback import reply, serve, split_requests, started, table

P99_TARGET = 3.0
EXTRA_TARGET = 0.10
SLOW_SHARE = 0.02
SLOW_FACTOR = 20


# -- the server (child process) ----------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.median = 0.010
        self.arrivals = 0
        self.hung_up = 0
        self.rng = random.Random(0)


STATE = _State()


class _Server(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.pending: set[asyncio.TimerHandle] = set()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending:
            STATE.hung_up += len(self.pending)  # the client gave up on these (a lost copy)
        for handle in self.pending:
            handle.cancel()
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        requests, self.buffer = split_requests(self.buffer + data)
        for head, _ in requests:
            target = head.split(b" ")[1].decode()
            if target.startswith("/__"):
                self.transport.write(reply(b"200 OK", self._control(target)))
                continue
            state = STATE
            state.arrivals += 1
            rng = state.rng
            if rng.random() < SLOW_SHARE:
                delay = state.median * SLOW_FACTOR
            else:
                delay = state.median * rng.lognormvariate(0.0, 0.1)
            box: list[asyncio.TimerHandle] = []
            box.append(asyncio.get_running_loop().call_later(delay, self._answer, box))
            self.pending.add(box[0])

    def _answer(self, box: list[asyncio.TimerHandle]) -> None:
        self.pending.discard(box[0])
        if not self.transport.is_closing():
            self.transport.write(reply(b"200 OK", b'{"ok":true}'))

    def _control(self, target: str) -> bytes:
        state = STATE
        if target.startswith("/__reset"):
            query = dict(part.split("=") for part in target.split("?", 1)[1].split("&"))
            state.median = float(query["median"])
            state.rng = random.Random(int(query["seed"]))
            state.arrivals = state.hung_up = 0
            return b"{}"
        return json.dumps({"arrivals": state.arrivals, "hung_up": state.hung_up}).encode()


# -- the client (this process) --------------------------------------------------------------


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _run(
    url: str, label: str, config: dict[str, Any], n: int, workers: int, median: float, engine: str
) -> dict[str, Any]:
    from pynector import Pynector

    latencies: list[float] = []
    async with Pynector(transport_type="http", base_url=url, engine=engine) as control:
        await control.request({"path": f"/__reset?median={median}&seed=1"})
    async with Pynector(
        transport_type="http", base_url=url, engine=engine, config=config
    ) as client:
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                started_at = time.perf_counter()
                await client.request({"path": "/work"})
                latencies.append(time.perf_counter() - started_at)

        began = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(worker)
        took = time.perf_counter() - began
    async with Pynector(transport_type="http", base_url=url, engine=engine) as control:
        stats = (await control.request({"path": "/__stats"})).json()
    ordered = sorted(latencies)
    return {
        "client": label,
        "requests": n,
        "p50 ms": _percentile(ordered, 50) * 1000,
        "p95 ms": _percentile(ordered, 95) * 1000,
        "p99 ms": _percentile(ordered, 99) * 1000,
        "max ms": ordered[-1] * 1000,
        "server saw": stats["arrivals"],
        "extra": stats["arrivals"] / n - 1,
        "hung up": stats["hung_up"],
        "seconds": took,
    }


async def tail(n: int, workers: int, median: float, engine: str) -> list[dict[str, Any]]:
    rows = []
    with started([sys.executable, __file__, "--serve"]) as url:
        for label, config in (
            ("plain", {}),
            ('hedge_after="p95"', {"hedge_after": "p95"}),
            ('hedge_after="p99"', {"hedge_after": "p99"}),
        ):
            rows.append(await _run(url, label, config, n, workers, median, engine))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    parser.add_argument("--n", type=int, default=None, help="requests per client")
    parser.add_argument("--workers", type=int, default=16, help="requests in flight")
    parser.add_argument("--median", type=float, default=0.010, help="median latency, seconds")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--engine", default="auto", help="the HTTP engine (auto, aiohttp, httpx2)")
    args = parser.parse_args()
    if args.serve:
        serve(_Server)
        return 0
    n = args.n or (1500 if args.quick else 4000)
    print(
        f"Tail: {n} requests, {args.workers} in flight, {args.backend}/{args.engine}; "
        f"server median {args.median * 1000:g} ms, {SLOW_SHARE:.0%} of requests "
        f"{SLOW_FACTOR}x ({args.median * SLOW_FACTOR * 1000:g} ms)"
    )
    rows = anyio.run(tail, n, args.workers, args.median, args.engine, backend=args.backend)
    table(rows)
    plain, hedged = rows[0], rows[1]
    ratio = plain["p99 ms"] / hedged["p99 ms"]
    extra = hedged["extra"]
    ok = ratio >= P99_TARGET and extra <= EXTRA_TARGET
    print(
        f'\np99 plain / hedge_after="p95": {ratio:.2f}x (target >= {P99_TARGET:g}); '
        f"extra requests {extra:.3f} of those made (target <= {EXTRA_TARGET:.2f}): "
        f"{'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
