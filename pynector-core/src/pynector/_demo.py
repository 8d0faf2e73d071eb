"""``pynector demo``: the main job against an embedded loopback server.

Shows one request, a timeout, a retry that honours the server's Retry-After,
and a batch under a concurrency limit and a rate limit, then a summary. It
needs no network and no set-up, and finishes in a few seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cli import Subcommands
    from .hookspecs import RequestInfo, RetryWaitInfo

__all__ = ["add_demo_parser"]


def add_demo_parser(subcommands: Subcommands) -> None:
    """Add ``pynector demo``."""
    parser = subcommands.add_parser(
        "demo",
        help="run request, timeout, retry and batch against an embedded loopback server",
        description=(
            "Start an HTTP server on 127.0.0.1 and show what pynector does: a request, a "
            "timeout, a retry that honours Retry-After, and a rate-limited batch with a "
            "progress bar and a summary. Needs no network."
        ),
    )
    parser.add_argument("--requests", type=int, default=300, help="batch size (default 300)")
    parser.add_argument("--concurrency", type=int, default=20, help="batch concurrency (20)")
    parser.add_argument("--rate", default="250/s", help="client rate limit (default 250/s)")
    parser.set_defaults(handler=_run_demo)


def _observer() -> _Observer:
    """Build the demo's plugin (pluggy is imported only when the demo runs)."""
    from .hookspecs import hookimpl

    class Observer(_Observer):
        @hookimpl
        def pynector_request(self, info: RequestInfo) -> Any:
            return self._timed(info)

        @hookimpl
        def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
            self.retries.append(info)

    return Observer()


class _Observer:
    """A pynector plugin that times attempts and records retry decisions."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.retries: list[RetryWaitInfo] = []
        self.advance: Callable[[], None] | None = None

    @contextmanager
    def _timed(self, info: RequestInfo) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.latencies.append(time.perf_counter() - start)
        if info.batch_index is not None and self.advance is not None:
            self.advance()


class _Output:
    """Rich output on a terminal with rich installed, plain lines otherwise."""

    def __init__(self) -> None:
        self.console: Any = None
        if sys.stdout.isatty():
            try:
                from rich.console import Console
            except ImportError:
                pass
            else:
                self.console = Console()

    def heading(self, text: str) -> None:
        if self.console is not None:
            self.console.rule(f"[bold]{text}")
        else:
            print(f"\n== {text}", flush=True)

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)
        else:
            print(f"   {text}", flush=True)

    @contextmanager
    def progress(self, total: int, observer: _Observer) -> Iterator[None]:
        if self.console is not None:
            from rich.progress import Progress

            with Progress(console=self.console) as bar:
                task = bar.add_task("batch", total=total)
                observer.advance = lambda: bar.advance(task)
                yield
                bar.update(task, completed=total)
        else:
            done = 0
            step = max(total // 4, 1)

            def advance() -> None:
                nonlocal done
                done += 1
                if done % step == 0:
                    print(f"   progress: {min(done, total)}/{total}", flush=True)

            observer.advance = advance
            yield
        observer.advance = None

    def summary(self, rows: list[tuple[str, str]]) -> None:
        if self.console is not None:
            from rich.table import Table

            table = Table(title="Batch summary", title_justify="left")
            table.add_column("measure")
            table.add_column("value", justify="right")
            for name, value in rows:
                table.add_row(name, value)
            self.console.print(table)
        else:
            print("\n   Batch summary")
            for name, value in rows:
                print(f"   {name:<20}{value:>12}")


async def _demo(args: argparse.Namespace, out: _Output) -> int:
    from . import Pynector
    from ._demo_server import DemoServer
    from .errors import TimeoutError
    from .registry import register_plugin, unregister_plugin

    observer = _observer()
    name = register_plugin(observer, name="pynector-demo")
    try:
        with DemoServer() as server:
            out.say(f"embedded server listening on {server.url} (loopback only)")
            config = {"rate_limit": args.rate, "timeout": 10.0, "retry_delay": 0.1}
            client = Pynector(transport_type="http", base_url=server.url, config=config)
            async with client:
                out.heading("1. A request")
                response = await client.request({"path": "/users/1", "method": "GET"})
                out.say(f"GET /users/1 -> {response.status_code} {response.json()}")

                out.heading("2. A timeout")
                start = time.perf_counter()
                try:
                    await client.request({"path": "/slow", "params": {"seconds": 5}}, timeout=0.5)
                except TimeoutError as exc:
                    waited = time.perf_counter() - start
                    kind = type(exc).__name__
                    out.say(f"GET /slow (answers after 5 s) with timeout=0.5 -> {kind}")
                    out.say(f"gave up after {waited:.2f} s: {exc}")

                out.heading("3. A retry that recovers")
                start = time.perf_counter()
                response = await client.request_with_retry(
                    {"path": "/flaky/demo"}, max_retries=3, retry_delay=0.2
                )
                for wait in observer.retries:
                    error = wait.error
                    status = getattr(error, "status_code", "?")
                    out.say(
                        f"attempt {wait.attempt}: {status} {type(error).__name__}; waiting "
                        f"{wait.delay:.2f} s ({wait.reason})"
                    )
                out.say(
                    f"attempt {len(observer.retries) + 1}: {response.status_code} "
                    f"{response.json()} after {time.perf_counter() - start:.2f} s; the server "
                    f"counted {server.hits['/flaky/demo']} requests"
                )

                total = args.requests
                out.heading(
                    f"4. A batch of {total} requests, max_concurrency={args.concurrency}, "
                    f"rate_limit={args.rate}"
                )
                observer.latencies.clear()
                observer.retries.clear()
                requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
                    ({"path": f"/items/{n}", "method": "GET"}, {}) for n in range(1, total + 1)
                ]
                start = time.perf_counter()
                with out.progress(total, observer):
                    results = await client.batch_request(
                        requests, max_concurrency=args.concurrency, max_retries=2
                    )
                elapsed = time.perf_counter() - start
    finally:
        unregister_plugin(name)

    failed = sum(isinstance(result, BaseException) for result in results)
    latencies = sorted(observer.latencies) or [0.0]
    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    out.summary(
        [
            ("requests", str(total)),
            ("succeeded", str(total - failed)),
            ("failed", str(failed)),
            ("retried", str(len(observer.retries))),
            ("p50 latency", f"{statistics.median(latencies) * 1000:.1f} ms"),
            ("p95 latency", f"{quantiles[18] * 1000:.1f} ms"),
            ("requests/second", f"{total / elapsed:.0f}"),
            ("wall time", f"{elapsed:.2f} s"),
        ]
    )
    return 0 if failed == 0 else 1


def _run_demo(args: argparse.Namespace) -> int:
    import anyio

    from .errors import ConfigurationError

    if args.requests < 1 or args.concurrency < 1:
        print("pynector demo: --requests and --concurrency must be at least 1", file=sys.stderr)
        return 2
    out = _Output()
    try:
        return anyio.run(_demo, args, out)
    except ConfigurationError as exc:
        print(f"pynector demo: {exc}", file=sys.stderr)
        return 1
