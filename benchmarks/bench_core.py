"""Core benchmarks: batch memory and overhead, and the cost of ``import pynector``.

Each scenario runs in its own process so that peak memory (ru_maxrss) belongs
to it alone; figures are printed as ratios against a baseline measured in the
same run, because absolute numbers vary from machine to machine.

    uv run python benchmarks/bench_core.py            # 1,000,000 requests
    uv run python benchmarks/bench_core.py --n 100000 # quicker
    uv run python benchmarks/bench_core.py --import-only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

HEAVY = [
    "asyncio",
    "email",
    "ssl",
    "pydantic",
    "pluggy",
    "rich",
    "trio",
    "httpx2",
    "httpx",
    "aiohttp",
    "openai",
    "anthropic",
    "opentelemetry",
]

# Bytecode is cached for both sides (a user's installed packages have it):
# PYTHONDONTWRITEBYTECODE would make every run compile pynector from source.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scenario(name: str, n: int, concurrency: int) -> dict[str, float]:
    """Run one scenario in this process and return its figures."""
    import asyncio

    from pynector import Pynector
    from pynector.testing import MockTransport

    reply = {"ok": True}

    def handler(data: object, **options: object) -> object:
        return reply

    async def pynector_batch() -> int:
        transport = MockTransport(handler, record=False)
        async with Pynector(transport=transport) as client:
            requests: Iterator[tuple[dict[str, int], dict[str, object]]] = (
                ({"n": i}, {}) for i in range(n)
            )
            results = await client.batch_request(requests, max_concurrency=concurrency)
        return len(results)

    async def pynector_stream() -> int:
        transport = MockTransport(handler, record=False)
        done = 0
        async with Pynector(transport=transport) as client:
            requests: Iterator[tuple[dict[str, int], dict[str, object]]] = (
                ({"n": i}, {}) for i in range(n)
            )
            async with client.batch(requests, max_concurrency=concurrency) as results:
                async for _ in results:
                    done += 1
        return done

    async def gather() -> int:
        transport = MockTransport(handler, record=False)
        async with Pynector(transport=transport) as client:
            results = await asyncio.gather(*(client.request({"n": i}) for i in range(n)))
        return len(results)

    async def bare_loop() -> int:
        transport = MockTransport(handler, record=False)
        results = [await transport.request({"n": i}) for i in range(n)]
        return len(results)

    runner = {
        "batch": pynector_batch,
        "stream": pynector_stream,
        "gather": gather,
        "bare": bare_loop,
    }[name]
    base = _peak_mib()
    start = time.perf_counter()
    done = asyncio.run(runner())
    elapsed = time.perf_counter() - start
    assert done == n
    return {"seconds": elapsed, "peak_mib": _peak_mib(), "base_mib": base}


def run_child(name: str, n: int, concurrency: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            name,
            "--n",
            str(n),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _python(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_ENV
    ).stdout


def import_time(module: str, repeat: int = 7) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    _python(code)  # writes the bytecode cache if it is missing
    return statistics.median(float(_python(code)) for _ in range(repeat))


def heavy_modules() -> list[str]:
    """The heavy modules ``import pynector`` adds to what ``import anyio`` imports."""
    code = (
        "import sys, anyio\n"
        "before = set(sys.modules)\n"
        "import pynector\n"
        "added = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        f"print(','.join(m for m in {HEAVY!r} if m in added))"
    )
    return [name for name in _python(code).strip().split(",") if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--child")
    parser.add_argument("--import-only", action="store_true", help="only the import time")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(scenario(args.child, args.n, args.concurrency)))
        return
    if not args.import_only:
        batch_figures(args.n, args.concurrency)
        print()
    import_figures()


def batch_figures(n: int, c: int) -> None:
    print(f"## Core: batch of {n:,} requests through MockTransport, max_concurrency={c}")
    batch = run_child("batch", n, c)
    stream = run_child("stream", n, c)
    gather = run_child("gather", n, c)
    bare = run_child("bare", n, c)
    print(f"{'scenario':<34}{'peak MiB':>10}{'us/request':>12}")
    for label, fig in [
        ("pynector batch_request", batch),
        ("pynector batch (async for)", stream),
        ("asyncio.gather of client.request", gather),
        ("bare loop of awaits (baseline)", bare),
    ]:
        print(f"{label:<34}{fig['peak_mib']:>10.1f}{fig['seconds'] / n * 1e6:>12.2f}")
    growth_batch = batch["peak_mib"] - batch["base_mib"]
    growth_gather = gather["peak_mib"] - gather["base_mib"]
    print(
        f"peak memory, batch / gather: {batch['peak_mib'] / gather['peak_mib']:.3f} "
        f"(growth over the interpreter: {growth_batch:.1f} MiB vs {growth_gather:.1f} MiB, "
        f"{growth_batch / growth_gather:.3f}; target <= 0.1)"
    )
    print(f"time per request, batch / bare loop: {batch['seconds'] / bare['seconds']:.2f}x")
    print(
        f"time per request, streamed batch / bare loop: {stream['seconds'] / bare['seconds']:.2f}x"
    )


def import_figures() -> None:
    print("## Core: import time (median of 7 fresh interpreters)")
    anyio_time = import_time("anyio")
    pynector_time = import_time("pynector")
    print(f"import anyio:    {anyio_time * 1000:7.1f} ms (baseline)")
    print(
        f"import pynector: {pynector_time * 1000:7.1f} ms ({pynector_time / anyio_time:.2f}x anyio)"
    )
    heavy = heavy_modules()
    print(f"heavy modules import pynector adds to anyio's: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
