"""A batch with a concurrency limit, a rate limit and retries, results in input order.

    uv run python examples/batch.py [--requests 200] [--concurrency 10] [--backend trio]

Every 25th item of the embedded demo server fails once with a 503, so a few
requests are retried. The rate limit is paced (one start every 2 ms) with a
burst of 50 allowed at once; a small plugin counts the requests in flight to
show the concurrency limit holding during the burst.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import anyio

import pynector
from pynector import Pynector
from pynector.cli._demo_server import DemoServer
from pynector.hookspecs import RequestInfo


class InFlight:
    """A pynector plugin that records the most requests in flight at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    @pynector.hookimpl
    def pynector_request(self, info: RequestInfo) -> AbstractContextManager[None]:
        return self._count()

    @contextmanager
    def _count(self) -> Iterator[None]:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            yield
        finally:
            self.now -= 1


async def main(base_url: str, count: int, concurrency: int) -> None:
    in_flight = InFlight()
    async with Pynector(
        transport_type="http",
        base_url=base_url,
        config={"rate_limit": "500/s", "rate_burst": 50, "retry_delay": 0.05},
        plugins=[in_flight],
    ) as client:
        requests: Iterator[tuple[dict[str, str], dict[str, Any]]]
        requests = (({"path": f"/items/{n}"}, {}) for n in range(1, count + 1))
        started = time.monotonic()
        results = await client.batch_request(
            requests, max_concurrency=concurrency, timeout=30.0, max_retries=2
        )
        elapsed = time.monotonic() - started
    failed = [r for r in results if isinstance(r, Exception)]
    in_order = [r.json()["item"] for r in results if not isinstance(r, Exception)]
    print(f"{len(results)} requests in {elapsed:.2f} s: {len(results) - len(failed)} succeeded")
    print(f"failed: {len(failed)}")
    print(f"results in input order: {in_order == list(range(1, count + 1))}")
    print(f"most in flight at once: {in_flight.most} (max_concurrency={concurrency})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    with DemoServer() as server:
        anyio.run(main, server.url, args.requests, args.concurrency, backend=args.backend)
