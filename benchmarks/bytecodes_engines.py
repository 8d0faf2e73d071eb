"""Python bytecodes per request: Pynector on aiohttp against raw aiohttp, counted, not timed.

A steadier companion to ``bench_engines.py`` for work on the request path:
timings on a shared 2-core machine move by several percent from run to run,
while the number of bytecodes the interpreter runs per request (counted with
``sys.settrace`` opcode events, every Python frame included, aiohttp's and
asyncio's too) is the same every time. The bytecodes are not the CPU time
(C code such as aiohttp's parser, syscalls and allocation are not counted),
but on this path they move with it. The same loopback server as
``bench_engines.py``, in its own process; the client sends ``--n`` GET
requests at ``--concurrency`` after a warm-up, raw aiohttp first, then
``Pynector(transport_type="http", engine="aiohttp", enable_telemetry=False)``,
and prints the totals and the functions that differ most. Not part of
``run.py``: it measures a count, not a target.

    uv run python benchmarks/bytecodes_engines.py
    uv run python benchmarks/bytecodes_engines.py --concurrency 100 --top 40
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from _loopback import started, workers
from bench_engines import aiohttp_sides

Key = tuple[str, str]


class Counter:
    """Counts the opcodes each Python function runs while tracing is on."""

    def __init__(self) -> None:
        self.opcodes: collections.Counter[Key] = collections.Counter()

    def trace(self, frame: FrameType, event: str, arg: object) -> Callable[..., Any] | None:
        if event != "call":
            return None
        frame.f_trace_opcodes = True
        code = frame.f_code
        key = (code.co_filename.split("site-packages/")[-1].split("/src/")[-1], code.co_name)
        opcodes = self.opcodes

        def local(frame: FrameType, event: str, arg: object) -> Callable[..., Any]:
            if event == "opcode":
                opcodes[key] += 1
            return local

        return local


async def count(url: str, n: int, concurrency: int) -> dict[str, collections.Counter[Key]]:
    counts: dict[str, collections.Counter[Key]] = {}
    async with aiohttp_sides(url) as (raw_aiohttp, pynector_aiohttp):
        for name, send in (("raw aiohttp", raw_aiohttp), ("pynector aiohttp", pynector_aiohttp)):
            await workers(send, max(300, 2 * concurrency), concurrency)  # warm up
            counter = Counter()
            sys.settrace(counter.trace)
            try:
                await workers(send, n, concurrency)
            finally:
                sys.settrace(None)
            counts[name] = counter.opcodes
    return counts


def main() -> int:
    os.environ["PYNECTOR_PLUGINS"] = ""  # no installed plugin joins the requests
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="requests counted per side")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    args = parser.parse_args()
    with started() as url:
        counts = asyncio.run(count(url, args.n, args.concurrency))
    raw, ours = counts["raw aiohttp"], counts["pynector aiohttp"]
    raw_total, ours_total = sum(raw.values()) / args.n, sum(ours.values()) / args.n
    print(
        f"Python bytecodes per request, concurrency {args.concurrency}, {args.n} requests: "
        f"raw aiohttp {raw_total:.0f}, pynector aiohttp {ours_total:.0f} "
        f"({ours_total / raw_total:.3f}x)"
    )
    rows = sorted(
        ((ours[key] - raw[key]) / args.n, key)
        for key in set(raw) | set(ours)
        if ours[key] != raw[key]
    )
    print(f"\n{'difference':>10}  function (pynector minus raw aiohttp, per request)")
    for difference, (where, name) in rows[::-1][: args.top]:
        print(f"{difference:>+10.1f}  {where}:{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
