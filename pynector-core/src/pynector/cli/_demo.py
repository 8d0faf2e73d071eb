"""``pynector demo``: the main job against an embedded loopback server.

Shows one request, a timeout, a retry that honours the server's Retry-After, a
batch under a concurrency limit and a rate limit, an LLM call through the
``sdk`` transport (when pynector-sdk is installed) and a ``pynector batch``
stopped with SIGTERM and resumed with nothing lost or repeated. It needs no
network and no set-up, and finishes in a few seconds.

The SDK is reached only as ``transport_type="sdk"`` through the registry: the
demo knows nothing of it but the shape of an OpenAI chat completion.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynector import BatchResult
    from pynector._client import Pynector
    from pynector.hookspecs import RetryWaitInfo

    from ._command import Subcommands
    from ._demo_server import DemoServer
    from ._progress import Reporter

__all__ = ["add_demo_parser"]

SDK_INSTALL = 'pip install "pynector[sdk]"'
_BATCH_RETRIES = 2
_ORDERS = 150  # the batch that is stopped and resumed
_ORDER_CONCURRENCY = 5
_STOP_AT = 0.4  # stop it when this share of its lines is done


def add_demo_parser(subcommands: Subcommands) -> None:
    """Add ``pynector demo``."""
    parser = subcommands.add_parser(
        "demo",
        help="run request, timeout, retry, batch, LLM call and resume on a loopback server",
        description=(
            "Start an HTTP server on 127.0.0.1 and show what pynector does: a request, a "
            "timeout, a retry that honours Retry-After, a rate-limited batch with a "
            "progress bar and a summary, an LLM call through the sdk transport (with "
            "pynector-sdk installed), and a pynector batch stopped and resumed. Needs no "
            "network."
        ),
    )
    parser.add_argument("--requests", type=int, default=300, help="batch size (default 300)")
    parser.add_argument("--concurrency", type=int, default=20, help="batch concurrency (20)")
    parser.add_argument("--rate", default="250/s", help="client rate limit (default 250/s)")
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="the event loop (default asyncio; trio needs trio installed)",
    )
    parser.set_defaults(handler=_run_demo)


def _observer() -> _Observer:
    """Build the demo's plugin (pluggy is imported only when the demo runs)."""
    from pynector.hookspecs import hookimpl

    class Observer(_Observer):
        @hookimpl
        def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
            self.retries.append(info)

    return Observer()


class _Observer:
    """A plugin of the demo's client alone: records its retry decisions."""

    def __init__(self) -> None:
        self.retries: list[RetryWaitInfo] = []


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
            self.console.print(text, highlight=False, markup=False)
        else:
            print(f"   {text}", flush=True)

    @contextmanager
    def progress(self, total: int) -> Iterator[Reporter]:
        """The progress of ``pynector batch``: a rich bar, or four plain lines."""
        from ._progress import Reporter, RichReporter
        from ._secrets import Secrets

        reporter: Reporter
        if self.console is not None:
            reporter = RichReporter(Secrets(), console=self.console)
        else:
            reporter = Reporter(Secrets(), plain=True, out=sys.stdout, steps=4)
        reporter.start(total)
        try:
            yield reporter
        finally:
            reporter.stop()

    def summary(self, rows: list[tuple[str, str]], title: str) -> None:
        if self.console is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            table.add_column("measure")
            table.add_column("value", justify="right")
            for name, value in rows:
                table.add_row(name, value)
            self.console.print(table)
        else:
            print(f"\n   {title}")
            for name, value in rows:
                print(f"   {name:<20}{value:>12}")


# -- the sections ---------------------------------------------------------------------


async def _request(client: Pynector, out: _Output) -> None:
    out.heading("1. A request")
    response = await client.request({"path": "/users/1", "method": "GET"})
    out.say(f"GET /users/1 -> {response.status_code} {response.json()}")


async def _timeout(client: Pynector, out: _Output) -> None:
    from pynector.errors import TimeoutError

    out.heading("2. A timeout")
    start = time.perf_counter()
    try:
        await client.request({"path": "/slow", "params": {"seconds": 5}}, timeout=0.5)
    except TimeoutError as exc:
        waited = time.perf_counter() - start
        out.say(f"GET /slow (answers after 5 s) with timeout=0.5 -> {type(exc).__name__}")
        out.say(f"gave up after {waited:.2f} s: {exc}")


async def _retry(client: Pynector, server: DemoServer, observer: _Observer, out: _Output) -> None:
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


async def _batch(client: Pynector, args: argparse.Namespace, out: _Output) -> bool:
    total = args.requests
    out.heading(
        f"4. A batch of {total} requests, max_concurrency={args.concurrency}, "
        f"rate_limit={args.rate}"
    )
    requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"path": f"/items/{n}", "method": "GET"}, {}) for n in range(1, total + 1)
    ]
    retried = 0
    start = time.perf_counter()
    with out.progress(total) as reporter:

        def finished(result: BatchResult[Any]) -> None:
            """Each result as it finishes: what a progress bar needs."""
            nonlocal retried
            retried += result.attempts - 1
            reporter.latencies.add(result.elapsed)
            reporter.advance(result.ok, result.attempts)

        results = await client.batch_request(
            requests,
            max_concurrency=args.concurrency,
            max_retries=_BATCH_RETRIES,
            on_result=finished,
        )
    elapsed = time.perf_counter() - start
    failed = sum(isinstance(result, BaseException) for result in results)

    def ms(q: float) -> str:
        value = reporter.latencies.quantile(q)
        return "-" if value is None else f"{value * 1000:.1f} ms"

    out.summary(
        [
            ("requests", str(total)),
            ("succeeded", str(total - failed)),
            ("failed", str(failed)),
            ("retried", str(retried)),
            ("p50 latency", ms(0.5)),
            ("p95 latency", ms(0.95)),
            ("requests/second", f"{total / elapsed:.0f}"),
            ("wall time", f"{elapsed:.2f} s"),
        ],
        "Batch summary",
    )
    return failed == 0


async def _llm_call(server: DemoServer, out: _Output) -> bool:
    """A chat completion through ``transport_type="sdk"``, if it is installed."""
    from pynector import Pynector
    from pynector.errors import ConfigurationError
    from pynector.registry import resolve_transport

    out.heading("5. An LLM call through the sdk transport")
    try:
        resolve_transport("sdk")
        client = Pynector(
            transport_type="sdk",
            provider="openai",
            base_url=f"{server.url}/v1",  # the embedded server speaks the OpenAI API
            api_key="sk-demo-not-a-real-key",
            config={"timeout": 10.0},
        )
    except ConfigurationError as exc:  # PluginError too: installed but broken
        reason = str(exc).split(". ")[0].rstrip(".")
        out.say(f"skipped: {reason}.")
        out.say(f"Install the sdk transport and the openai SDK with: {SDK_INSTALL}")
        return True
    question = "What does pynector do?"
    async with client:
        completion = await client.request(
            {"model": "demo-model", "messages": [{"role": "user", "content": question}]}
        )
    usage = completion.usage
    out.say(f"POST /v1/chat/completions through the openai SDK: {question!r}")
    out.say(f"-> {type(completion).__name__} from {completion.model}:")
    out.say(f"   {completion.choices[0].message.content!r}")
    out.say(
        f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens; the "
        f"server counted {server.hits['/v1/chat/completions']} request"
    )
    return True


async def _stopped_and_resumed(server: DemoServer, out: _Output) -> bool:
    """``pynector batch`` in a subprocess, stopped with SIGTERM mid-way, then resumed."""
    import signal
    import tempfile

    import anyio
    from anyio.streams.buffered import BufferedByteReceiveStream

    out.heading(f"6. A batch of {_ORDERS} stopped and resumed: nothing lost, nothing repeated")
    if sys.platform == "win32":  # pragma: no cover - no SIGTERM to send
        out.say("skipped on Windows: Ctrl-C stops pynector batch the same way")
        return True
    with tempfile.TemporaryDirectory(prefix="pynector-demo-") as directory:
        source, output = Path(directory) / "orders.jsonl", Path(directory) / "results.jsonl"
        orders = (
            json.dumps({"id": f"order-{n}", "path": f"/orders/{n}"}) for n in range(1, _ORDERS + 1)
        )
        await anyio.Path(source).write_text("".join(line + "\n" for line in orders))
        argv = [
            *(sys.executable, "-m", "pynector", "batch", str(source), "-o", str(output)),
            *("--base-url", server.url, "--concurrency", str(_ORDER_CONCURRENCY)),
            *("--progress", "plain"),
        ]
        out.say(
            f"$ pynector batch orders.jsonl -o results.jsonl --base-url {server.url} "
            f"--concurrency {_ORDER_CONCURRENCY}"
        )
        stopped_at = 0
        notes: list[str] = []
        async with await anyio.open_process(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ) as process:
            assert process.stderr is not None
            lines = BufferedByteReceiveStream(process.stderr)
            while True:  # read to the end: a closed pipe would break its last messages
                try:
                    line = (await lines.receive_until(b"\n", 1 << 16)).decode()
                except (anyio.EndOfStream, anyio.IncompleteRead):
                    break
                handled = re.match(r"progress: (\d+)/", line)
                if handled and not stopped_at and int(handled[1]) >= _ORDERS * _STOP_AT:
                    stopped_at = int(handled[1])
                    process.send_signal(signal.SIGTERM)
                elif line.startswith("SIGTERM:"):
                    notes.append(line)
            first = await process.wait()
        before = await _result_ids(output)
        out.say(f"sent SIGTERM (what `kill` sends) at {stopped_at} of {_ORDERS} lines done:")
        for note in notes:
            out.say(f"  pynector batch: {note}")
        out.say(f"it wrote {len(before)} results and exited with status {first}")

        second = await anyio.run_process(argv, check=False)
        rows = _summary(second.stdout.decode())
        after = await _result_ids(output)
        out.say(
            f"the same command again: {rows.get('already done', '?')} already done, "
            f"{rows.get('sent', '?')} sent; exit status {second.returncode}"
        )
    hits = [count for path, count in server.hits.items() if path.startswith("/orders/")]
    repeated = sum(count - 1 for count in hits)
    lost = _ORDERS - len(set(after))
    out.say(
        f"{len(after)} result lines for {len(set(after))} ids; the server answered "
        f"{sum(hits)} requests for {len(hits)} orders: {lost} lost, {repeated} repeated"
    )
    return lost == 0 and repeated == 0 and len(after) == _ORDERS and second.returncode == 0


async def _result_ids(path: Path) -> list[str]:
    import anyio

    file = anyio.Path(path)
    if not await file.exists():
        return []
    text = await file.read_text(encoding="utf-8")
    return [json.loads(line)["id"] for line in text.splitlines() if line.strip()]


def _summary(text: str) -> dict[str, str]:
    """The rows of a plain ``pynector batch`` summary: ``  name   value``."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\s+(\S.*?)\s{2,}(\S.*)$", line)
        if match:
            rows[match[1]] = match[2]
    return rows


async def _demo(args: argparse.Namespace, out: _Output) -> int:
    from pynector import Pynector

    from ._demo_server import DemoServer

    started = time.perf_counter()
    observer = _observer()
    with DemoServer() as server:
        out.say(f"embedded server listening on {server.url} (loopback only)")
        config = {"rate_limit": args.rate, "timeout": 10.0, "retry_delay": 0.1}
        client = Pynector(
            transport_type="http", base_url=server.url, config=config, plugins=[observer]
        )
        async with client:
            await _request(client, out)
            await _timeout(client, out)
            await _retry(client, server, observer, out)
            ok = await _batch(client, args, out)
        ok &= await _llm_call(server, out)
        ok &= await _stopped_and_resumed(server, out)
    out.heading(f"Done in {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


def _run_demo(args: argparse.Namespace) -> int:
    import anyio

    from pynector.errors import ConfigurationError

    if args.requests < 1 or args.concurrency < 1:
        print("pynector demo: --requests and --concurrency must be at least 1", file=sys.stderr)
        return 2
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        print("pynector demo: --backend trio needs trio: pip install trio", file=sys.stderr)
        return 2
    out = _Output()
    try:
        return anyio.run(_demo, args, out, backend=args.backend)
    except ConfigurationError as exc:
        print(f"pynector demo: {exc}", file=sys.stderr)
        return 1
