"""Limits shared by a fleet through Redis: what the server sees, and what it costs.

A real ``redis-server`` (started here, on a free port) holds the limits; the
loopback server of ``bench_limits.py`` runs in its own process, enforces a
limit as providers do (a token bucket: N requests a second, one second of
burst; over it a request is answered 429) and records when every request
arrived.

Shared: 8 processes, each a client configured at the server's limit
(``"40/s"``), share it through ``config={"store": "redis://..."}`` and one
``limit_key``. Reported: the 429s, the aggregate accepted rate over the limit
(target >= 0.90) and the most arrivals in any one-second window over the limit
(the bound: <= 1.00). The baseline in the same run: the same 8 processes with
``memory://`` (each holds the limit alone, so together they send 8 times it).

Cost: one process sends requests as fast as a ``"1000/s"`` limit lets it,
first with ``memory://``, then with the Redis store. Reported: the client's
CPU time per request (``time.process_time``) and the ratio Redis / memory
(target <= 1.2).

    uv run python benchmarks/bench_shared.py            # about 30 s
    uv run python benchmarks/bench_shared.py --quick    # about 15 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _loopback import started, table, workers
from bench_limits import most_in_window

ROOT = Path(__file__).resolve().parents[1]
SHARED_TARGET = 0.90
COST_TARGET = 1.2


# -- a worker process --------------------------------------------------------------------


async def _work(spec: dict[str, Any]) -> dict[str, Any]:
    from pynector import Pynector

    async with Pynector(
        transport_type="http", base_url=spec["url"], config=spec["config"]
    ) as client:
        # Open the connections and reach the store first (a fleet at work has them):
        # a start is counted before connecting, so a new connection arrives late.
        await workers(
            lambda: client.request({"path": "/__stats"}), spec["concurrency"], spec["concurrency"]
        )
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        refused = 0

        async def send() -> None:
            nonlocal refused
            try:
                await client.request({"path": "/work"})
            except Exception:  # a 429: counted here and by the server
                refused += 1

        cpu = time.process_time()
        wall = time.perf_counter()
        await workers(send, spec["n"], spec["concurrency"])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"refused": refused, "cpu": cpu, "wall": wall}


def _spawn(spec: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
    )


def _run_fleet(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start every worker, wait until each is ready, start them together, collect."""
    processes = [_spawn(spec) for spec in specs]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not start: {line!r}")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, _ = process.communicate(timeout=300)
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def _server_stats(url: str, path: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url + path, timeout=10) as reply:
        return json.loads(reply.read())


# -- Shared ------------------------------------------------------------------------------


def shared(url: str, redis_url: str, rate: int, processes: int, each: int) -> list[dict[str, Any]]:
    rows = []
    for label, store in (
        (f"{processes} processes, redis store", redis_url),
        (f"{processes} processes, memory:// (baseline)", "memory://"),
    ):
        _server_stats(url, f"/__reset?rate={rate}&burst={rate}")
        config = {
            "store": store,
            "limit_key": f"bench-shared-{time.monotonic_ns()}",
            "rate_limit": f"{rate}/s",
            "timeout": 30,
        }
        spec = {"url": url, "config": config, "n": each, "concurrency": 10}
        _run_fleet([spec] * processes)
        stats = _server_stats(url, "/__stats")
        arrivals = sorted(stats["arrivals"])
        refused = stats["refused"]
        span = arrivals[-1] - arrivals[0]
        accepted = (len(arrivals) - refused - 1) / span if span > 0 else float("inf")
        rows.append(
            {
                "run": label,
                "requests": len(arrivals),
                "429s": refused,
                "rate/limit": accepted / rate,
                "max 1s/limit": most_in_window(arrivals, 1.0) / rate,
            }
        )
    return rows


# -- Cost --------------------------------------------------------------------------------


def cost(url: str, redis_url: str, rate: int, n: int, rounds: int) -> list[dict[str, Any]]:
    per_request: dict[str, list[float]] = {"memory://": [], "redis": []}
    for _ in range(rounds):
        _server_stats(url, "/__reset?rate=0&burst=1")
        for label, store in (("memory://", "memory://"), ("redis", redis_url)):
            config = {
                "store": store,
                "limit_key": f"bench-cost-{time.monotonic_ns()}",
                "rate_limit": f"{rate}/s",
                "timeout": 30,
            }
            spec = {"url": url, "config": config, "n": n, "concurrency": 50}
            (result,) = _run_fleet([spec])
            per_request[label].append(result["cpu"] / n * 1e6)
    memory = min(per_request["memory://"])
    redis = min(per_request["redis"])
    return [
        {"store": "memory://", "CPU us/request": memory, "ratio": 1.0},
        {"store": "redis", "CPU us/request": redis, "ratio": redis / memory},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    parser.add_argument("--only", choices=["shared", "cost"], help="run one of the two")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(_work(json.loads(args.worker)))))
        return 0
    sys.path.insert(0, str(ROOT))
    from tests._redis import RedisServer

    ok = True
    bench_limits = str(Path(__file__).with_name("bench_limits.py"))
    with RedisServer() as redis, started([sys.executable, bench_limits, "--serve"]) as url:
        if args.only in (None, "shared"):
            rate, processes = 40, 8
            each = 15 if args.quick else 30
            print(
                f"Shared: {processes} processes x {each} requests, each configured at "
                f'"{rate}/s", server enforcing {rate}/s with {rate} of burst'
            )
            rows = shared(url, redis.url, rate, processes, each)
            table(rows)
            first = rows[0]
            ok &= (
                first["429s"] == 0
                and first["rate/limit"] >= SHARED_TARGET
                and first["max 1s/limit"] <= 1
            )
        if args.only in (None, "cost"):
            rate, n = 1000, 1500 if args.quick else 3000
            rounds = 2 if args.quick else 3
            print(f'\nCost: {n} requests under "{rate}/s", best of {rounds} rounds')
            rows = cost(url, redis.url, rate, n, rounds)
            table(rows)
            ok &= rows[1]["ratio"] <= COST_TARGET
    print(
        f"\ntargets: shared (redis row) 0 429s, rate/limit >= {SHARED_TARGET}, max 1s/limit <= 1; "
        f"cost ratio <= {COST_TARGET}: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
