"""Soak: 100,000 requests with random faults and cancellations, then a leak check.

One ``Pynector(transport_type="http")`` client sends a seeded random mix of
requests to a socket-level fault server running in a separate process
(connection resets, stalls, trickled bodies, 429s with every Retry-After form,
5xx, truncated and malformed replies, refused and hanging connects) while
random cancellations cut calls short (the caller's cancel scope, the client's
own timeout, batch deadlines). Afterwards it checks that every request is
accounted for with an outcome the fault matrix allows, that no task, file
descriptor or socket is left, that memory stayed flat after warm-up, and that
the server saw every connection closed. The loop stops by itself: after
``--requests`` or ``--time-limit`` seconds, whichever comes first.

    uv run python benchmarks/soak.py --backend asyncio            # 100,000 requests
    uv run python benchmarks/soak.py --backend trio --requests 5000 --seed 7

Exit status 0 when every check passed, 1 otherwise. See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability._servers import FaultServerProcess
from tests.reliability._soak import SoakReport, SpanCount, run_soak, traced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests in all")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random plan")
    parser.add_argument("--concurrency", type=int, default=64, help="workers")
    parser.add_argument(
        "--engine",
        default="auto",
        help="the HTTP transport's engine= option (auto: aiohttp on asyncio when installed)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=900.0, help="seconds before the loop stops anyway"
    )
    parser.add_argument(
        "--no-telemetry",
        action="store_true",
        help="do not trace the soak with pynector-otel on the OpenTelemetry SDK",
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.time_limit <= 0:
        parser.error("--requests, --concurrency and --time-limit must be positive")
    print(
        f"soak: {args.requests:,} requests on {args.backend} (seed {args.seed}), "
        f"Python {platform.python_version()}, {platform.system()} ...",
        flush=True,
    )
    with FaultServerProcess() as server:

        async def soak(spans: SpanCount | None) -> SoakReport:
            return await run_soak(
                server,
                requests=args.requests,
                seed=args.seed,
                concurrency=args.concurrency,
                time_limit=args.time_limit,
                backend=args.backend,
                engine=args.engine,
                spans=spans,
            )

        if args.no_telemetry:
            report = anyio.run(soak, None, backend=args.backend)
        else:
            with traced() as spans:
                report = anyio.run(soak, spans, backend=args.backend)
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
