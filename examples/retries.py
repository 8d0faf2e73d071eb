"""Retries that respect the server: backoff, Retry-After, and no retry of client errors.

    uv run python examples/retries.py [--backend trio]

``/flaky/...`` on the embedded demo server answers 503, then 429 with
``Retry-After: 1``, then 200. A small plugin prints every retry decision the
client takes (the same hook the telemetry plugin uses).
"""

from __future__ import annotations

import argparse
import time

import anyio

import pynector
from pynector import Pynector
from pynector.cli._demo_server import DemoServer
from pynector.errors import NotFoundError
from pynector.hookspecs import RetryWaitInfo


class PrintRetries:
    """A pynector plugin: one line per retry decision."""

    @pynector.hookimpl
    def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
        print(
            f"  attempt {info.attempt} failed ({type(info.error).__name__}): "
            f"waiting {info.delay:.2f} s ({info.reason})"
        )


async def main(base_url: str) -> None:
    async with Pynector(
        transport_type="http", base_url=base_url, plugins=[PrintRetries()]
    ) as client:
        print("GET /flaky/orders with max_retries=3, retry_delay=0.2:")
        started = time.monotonic()
        response = await client.request_with_retry(
            {"path": "/flaky/orders"}, max_retries=3, retry_delay=0.2
        )
        elapsed = time.monotonic() - started
        print(f"  -> {response.status_code} {response.json()} in {elapsed:.1f} s")

        print("GET /missing: a client error is raised at once, never retried:")
        try:
            await client.request_with_retry({"path": "/missing"}, max_retries=3)
        except NotFoundError as error:
            print(f"  -> NotFoundError {error.status_code}, retryable={error.retryable}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    with DemoServer() as server:
        anyio.run(main, server.url, backend=args.backend)
