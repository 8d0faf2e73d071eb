"""Outage: the server answers 503 for a while mid-run; what do the callers send meanwhile?

A loopback "provider" in its own process answers every request after a short
latency, except during an outage window (by its own clock, from its first
request): then it answers 503 at once. It records when each request arrived
and how it was answered. The same workload runs twice, with the same retry
settings (``retry_count`` 3, ``retry_delay`` 0.2 s, jittered backoff):

- plain: retries only (``retry_budget`` off, no breaker);
- breaker: ``circuit_breaker=True`` (the defaults: cooldown 5 s) and the
  retry budget (on by default).

Workers call ``request_with_retry`` in a loop; a failed call is dropped and
the worker moves on; on ``CircuitOpenError`` the worker waits its
``retry_after`` (the documented advice). Reported, from the server's records:
the requests sent during the outage, breaker / plain (target <= 0.05), and the
time from the end of the outage until the throughput is back to 90 % of its
level before the outage (target <= cooldown + 2 s).

    uv run python benchmarks/bench_outage.py            # 10 s outage, about 55 s
    uv run python benchmarks/bench_outage.py --quick    # 3 s outage, about 20 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
from _loopback import reply, split_requests

COOLDOWN = 5.0  # the breaker's default
RATIO_TARGET = 0.05
RECOVERY_SLACK = 2.0
BIN = 0.25  # seconds per throughput bin

OK = b'{"ok":true}'
FAILED = b'{"error":"overloaded"}'


# -- the server (child process) ----------------------------------------------------------


def serve(warmup: float, outage: float, latency: float, stats: str) -> None:
    """Answer 200 after ``latency``, or 503 at once in ``[warmup, warmup + outage)``."""
    log: list[tuple[float, int]] = []
    start: list[float] = []
    ok, down = reply(b"200 OK", OK), reply(b"503 Service Unavailable", FAILED)

    class Provider(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            requests, self.buffer = split_requests(self.buffer)
            loop = asyncio.get_running_loop()
            for _ in requests:
                now = loop.time()
                if not start:
                    start.append(now)
                at = now - start[0]
                if warmup <= at < warmup + outage:
                    log.append((at, 503))
                    self.transport.write(down)
                else:
                    log.append((at, 200))
                    loop.call_later(latency, self._answer)

        def _answer(self) -> None:
            if not self.transport.is_closing():
                self.transport.write(ok)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Provider, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())
    Path(stats).write_text(json.dumps(log))


@contextmanager
def provider(
    warmup: float, outage: float, latency: float
) -> Iterator[tuple[str, list[tuple[float, int]]]]:
    """Start the provider; yield its URL and, once it has stopped, its records."""
    with tempfile.TemporaryDirectory() as folder:
        stats = str(Path(folder) / "log.json")
        command = [
            sys.executable,
            __file__,
            "--serve",
            f"--warmup={warmup}",
            f"--outage={outage}",
            f"--latency={latency}",
            f"--stats={stats}",
        ]
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        records: list[tuple[float, int]] = []
        try:
            assert child.stdout is not None
            yield f"http://127.0.0.1:{int(child.stdout.readline())}", records
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=10)
        records.extend((at, status) for at, status in json.loads(Path(stats).read_text()))


# -- the callers ----------------------------------------------------------------------


async def run(url: str, config: dict[str, Any], workers: int, seconds: float) -> int:
    """``workers`` loops of ``request_with_retry`` for ``seconds``; the calls that succeeded."""
    from pynector import Pynector
    from pynector.errors import CircuitOpenError, PynectorError

    succeeded = 0
    async with Pynector(transport_type="http", base_url=url, config=config) as client:
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal succeeded
            while (left := end - time.monotonic()) > 0:
                try:
                    with anyio.move_on_after(left):
                        await client.request_with_retry({"path": "/"})
                        succeeded += 1
                except CircuitOpenError as exc:
                    await anyio.sleep(min(exc.retry_after or 0.1, max(end - time.monotonic(), 0)))
                except PynectorError:
                    pass  # dropped: the worker moves on to its next call

        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(worker)
    return succeeded


def measure(
    records: list[tuple[float, int]], warmup: float, outage: float
) -> tuple[int, float, float]:
    """Requests during the outage, the throughput before it, and the recovery time."""
    during = sum(1 for at, _ in records if warmup <= at < warmup + outage)
    bins: dict[int, int] = {}
    for at, status in records:
        if status == 200:
            bins[int(at / BIN)] = bins.get(int(at / BIN), 0) + 1
    # Before: the bins of the second half of the warm-up (connections are open by then).
    before = [bins.get(b, 0) for b in range(int(warmup / 2 / BIN), int(warmup / BIN))]
    level = statistics.median(before) if before else 0.0
    back = warmup + outage
    recovered = float("inf")
    last = max(bins, default=0)
    for b in range(int(back / BIN), last + 1):
        if bins.get(b, 0) >= 0.9 * level:
            recovered = max(b * BIN - back, 0.0)
            break
    return during, level / BIN, recovered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 3 s outage")
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.01)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--outage", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--stats", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.warmup, args.outage, args.latency, args.stats)
        return
    warmup, outage, after = (2.0, 3.0, 6.0) if args.quick else (5.0, 10.0, 10.0)
    retries = {"retry_count": 3, "retry_delay": 0.2}
    modes = {
        "plain retries": {**retries, "retry_budget": False},
        "breaker + retry budget": {**retries, "circuit_breaker": True},
    }
    print(
        f"## Outage: 503 for {outage:g} s after {warmup:g} s; {args.workers} workers, "
        f"{args.latency * 1000:g} ms latency, retry_count 3, retry_delay 0.2 s"
    )
    print(f"{'mode':<26}{'sent in outage':>16}{'rps before':>12}{'back after':>12}")
    results = {}
    for name, config in modes.items():
        with provider(warmup, outage, args.latency) as (url, records):
            anyio.run(run, url, config, args.workers, warmup + outage + after)
        during, rate, recovered = measure(records, warmup, outage)
        results[name] = (during, recovered)
        print(f"{name:<26}{during:>16}{rate:>12.0f}{recovered:>11.2f}s")
    plain, _ = results["plain retries"]
    sent, recovered = results["breaker + retry budget"]
    ratio = sent / plain if plain else float("inf")
    print(
        f"requests sent during the outage, breaker / plain: {ratio:.3f} (target <= {RATIO_TARGET})"
    )
    print(
        f"throughput back after the outage: {recovered:.2f} s "
        f"(target <= cooldown + {RECOVERY_SLACK:g} s = {COOLDOWN + RECOVERY_SLACK:g} s)"
    )


if __name__ == "__main__":
    main()
