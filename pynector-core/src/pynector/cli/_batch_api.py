"""``pynector batch --via batch-api``: the requests go through a provider's Batch API.

Instead of sending each request, the run reads IN, splits the requests into
batches within the provider's limits (and one batch per endpoint), creates
them through the transport's :class:`~pynector.cli.BatchAPI`, polls them
every ``--poll-interval`` seconds, and when one ends, downloads its results
and errors and appends them to OUT in the chosen output format.

It resumes as a live run does, plus one file: ``OUT.batches.json`` beside OUT
(written atomically: a temporary file, synced, renamed) records every batch
created, so a re-run polls those instead of creating new ones::

    {"version": 1, "provider": "openai", "input": "in.jsonl",
     "batches": [{"id": "batch_abc", "group": "/v1/chat/completions",
                  "first_line": 1, "last_line": 5000, "requests": 5000,
                  "written": false}]}

A batch holds the requests of its ``group`` between ``first_line`` and
``last_line`` that were not done when it was created; ``written`` turns true
once all its results are in OUT. Requests of a batch that ended without a
result (expired, cancelled) are written as failures (``batch_expired``,
``batch_cancelled``), so ``--retry-failed`` sends them in a new batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._arguments import positive_number, whole_number
from ._errors import LineError, UsageError
from ._formats import (
    OutputFormat,
    ResultRecord,
    key_id,
    render,
)

if TYPE_CHECKING:
    from pynector._client import Pynector

    from ._ledger import OutputState, RequestLine
    from ._progress import Reporter
    from ._secrets import Secrets
    from ._support import BatchAPI, CLISupport, RemoteStatus

__all__ = [
    "RemoteRun",
    "add_batch_api_arguments",
    "check_batch_api_arguments",
    "provider_record",
    "state_path",
]

POLL_INTERVAL = 30.0
"""Seconds between two polls of the remote batches, by default."""
_STATE_VERSION = 1

# The options of a live run that mean nothing to a provider's Batch API.
_LIVE_ONLY = (
    ("rate", "--rate"),
    ("tpm", "--tpm"),
    ("store", "--store"),
    ("limit_key", "--limit-key"),
    ("shared_concurrency", "--shared-concurrency"),
    ("store_failure", "--store-failure"),
    ("job", "--job"),
    ("lease", "--lease"),
)
# The rows of the live summary that time requests sent one by one.
_LIVE_ROWS = frozenset({"retries", "p50 latency", "p95 latency", "requests/second"})
_BATCH_API_ONLY = (
    ("poll_interval", "--poll-interval"),
    ("max_batch_requests", "--max-batch-requests"),
)


def add_batch_api_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--via`` and the options of ``--via batch-api``."""
    group = parser.add_argument_group(
        "provider Batch API",
        "--via batch-api sends the requests through the provider's Batch API (half the "
        "price, results within 24 hours) instead of one by one; needs --transport sdk "
        "--provider openai|anthropic (see docs/cli.md)",
    )
    group.add_argument(
        "--via",
        choices=("live", "batch-api"),
        default="live",
        help="'live' (the default): send each request now; 'batch-api': create batches at "
        "the provider, poll them and write their results (resumable: OUT.batches.json)",
    )
    group.add_argument(
        "--poll-interval",
        type=positive_number,
        metavar="SECONDS",
        help=f"seconds between two polls of the remote batches (default {POLL_INTERVAL:g})",
    )
    group.add_argument(
        "--max-batch-requests",
        type=whole_number,
        metavar="N",
        help="most requests per remote batch (default and most: the provider's limit, "
        "50,000 for OpenAI and 100,000 for Anthropic)",
    )
    group.add_argument(
        "--cancel-on-interrupt",
        action="store_true",
        help="on Ctrl-C or SIGTERM, cancel the remote batches without asking (by default a "
        "terminal is asked; otherwise they keep running and a re-run collects them)",
    )


def check_batch_api_arguments(
    args: argparse.Namespace, support: CLISupport, client: Pynector
) -> BatchAPI | None:
    """The Batch API of ``--via batch-api`` (``None`` for a live run); refuse bad combinations.

    Raises:
        UsageError: For options of one mode given to the other, or a transport
            without a Batch API.
    """
    via = getattr(args, "via", "live")
    if via != "batch-api":
        given = [flag for name, flag in _BATCH_API_ONLY if getattr(args, name, None) is not None]
        if getattr(args, "cancel_on_interrupt", False):
            given.append("--cancel-on-interrupt")
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --via batch-api")
        return None
    live = [flag for name, flag in _LIVE_ONLY if getattr(args, name, None) is not None]
    if args.concurrency == "auto":
        live.append("--concurrency auto")
    if live:
        raise UsageError(
            f"{', '.join(live)} cannot be used with --via batch-api: the provider runs the "
            "batch at its own pace; drop them, or send live (--via live)"
        )
    api = support.batch_api(client)
    if api is None:
        raise UsageError(
            f"the {args.transport} transport has no Batch API: --via batch-api needs "
            "--transport sdk --provider openai (or anthropic)"
        )
    return api


def state_path(output: Path) -> Path:
    """The state file of the remote batches that write ``output``."""
    return output.with_name(output.name + ".batches.json")


# -- the provider's result lines -> records ---------------------------------------------

_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_ENDED_UNRUN = {"canceled": "batch_cancelled", "expired": "batch_expired"}


def _http_error(status: int, body: Any, message: str, request_id: str | None) -> dict[str, Any]:
    response = {"status_code": status, "headers": {}, "body": body}
    if request_id is not None:
        response["headers"] = {"x-request-id": request_id}
    return {
        "type": "HTTPStatusError",
        "message": message,
        "status_code": status,
        "retryable": False,
        "response": response,
    }


def _batch_error(code: str, message: str) -> dict[str, Any]:
    return {"type": "BatchAPIError", "message": message, "code": code, "retryable": False}


def provider_record(raw: bytes, provider: str, request: RequestLine) -> ResultRecord:
    """The record of a result line a provider's Batch API wrote for ``request``.

    The line itself is kept: written as it is when its own format is chosen.

    Raises:
        ValueError: If the line is not such a result line.
    """
    line = json.loads(raw)
    fmt = OutputFormat(provider)
    record = ResultRecord(request.id, request.line, False, 1, 0.0, None, provider_lines={fmt: raw})
    if fmt is OutputFormat.OPENAI:
        response, error = line.get("response"), line.get("error")
        if isinstance(response, dict) and error is None:
            status = int(response["status_code"])
            body = response.get("body")
            record.status_code, record.body = status, body
            record.request_id = response.get("request_id")
            if 200 <= status < 300:
                record.ok, record.value = True, body
                return record
            detail = body.get("error") if isinstance(body, dict) else None
            message = str(detail.get("message", "")) if isinstance(detail, dict) else ""
            record.message = message or f"HTTP {status}"
            record.value = _http_error(status, body, record.message, record.request_id)
            return record
        if not isinstance(error, dict):
            raise ValueError("neither a response nor an error")
        record.error_code = str(error.get("code") or "error")
        record.message = str(error.get("message") or "")
        record.value = _batch_error(record.error_code, record.message)
        return record
    result = line["result"]
    kind = result["type"]
    if kind == "succeeded":
        record.ok, record.status_code = True, 200
        record.body = record.value = result.get("message")
        return record
    if kind in _ENDED_UNRUN:
        record.error_code = _ENDED_UNRUN[kind]
        record.message = f"the batch was {kind} before this request ran"
        record.value = _batch_error(record.error_code, record.message)
        return record
    if kind != "errored":
        raise ValueError(f"unknown result type {kind!r}")
    error = result.get("error") or {}
    detail = error.get("error") if isinstance(error, dict) else None
    error_type = str(detail.get("type", "api_error")) if isinstance(detail, dict) else "api_error"
    record.message = str(detail.get("message", "")) if isinstance(detail, dict) else ""
    record.status_code = _STATUS_OF_TYPE.get(error_type, 500)
    record.body = error
    record.request_id = error.get("request_id") if isinstance(error, dict) else None
    record.value = _http_error(record.status_code, error, record.message, record.request_id)
    return record


def _missing_record(request: RequestLine, status: RemoteStatus) -> ResultRecord:
    """The record of a request an ended batch has no result for."""
    code = status.missing
    message = status.message or {
        "batch_expired": "the batch expired before this request ran",
        "batch_cancelled": "the batch was cancelled before this request ran",
    }.get(code, f"the batch ended ({status.state}) without a result for this request")
    return ResultRecord(
        request.id,
        request.line,
        False,
        0,
        0.0,
        _batch_error(code, message),
        error_code=code,
        message=message,
    )


# -- the state file ------------------------------------------------------------------------


@dataclass(slots=True)
class _Remote:
    """One batch created at the provider, as the state file records it."""

    id: str
    group: str
    first_line: int
    last_line: int
    requests: int
    written: bool = False

    def holds(self, group: str, line: int) -> bool:
        return self.group == group and self.first_line <= line <= self.last_line


class _State:
    """``OUT.batches.json``: the batches this output's runs created."""

    def __init__(self, path: Path, provider: str, source: Path) -> None:
        self.path = path
        self.provider = provider
        self.source = source
        self.batches: list[_Remote] = []

    @classmethod
    def load(cls, path: Path, provider: str, source: Path) -> _State:
        state = cls(path, provider, source)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return state
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
            if data.get("version") != _STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            found = data["provider"]
            state.batches = [
                _Remote(
                    str(item["id"]),
                    str(item["group"]),
                    int(item["first_line"]),
                    int(item["last_line"]),
                    int(item["requests"]),
                    bool(item.get("written", False)),
                )
                for item in data["batches"]
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"{path} is not a state file of pynector batch --via batch-api ({exc}); "
                "move it away to start new batches"
            ) from None
        if found != provider:
            raise UsageError(
                f"{path} records batches at {found}, not {provider}: run with --provider "
                f"{found}, or write to another file"
            )
        return state

    def save(self) -> None:
        """Write the file atomically: a crash leaves the old one or the new one, whole."""
        from ._ledger import fsync_directory

        data = {
            "version": _STATE_VERSION,
            "provider": self.provider,
            "input": str(self.source),
            "batches": [
                {
                    "id": item.id,
                    "group": item.group,
                    "first_line": item.first_line,
                    "last_line": item.last_line,
                    "requests": item.requests,
                    "written": item.written,
                }
                for item in self.batches
            ],
        }
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        fsync_directory(self.path.parent)

    def pending(self) -> list[_Remote]:
        return [item for item in self.batches if not item.written]


# -- the run ---------------------------------------------------------------------------


class _Ledger(Protocol):
    """What the run needs of the live batch's bookkeeping (``_batch.Batch``)."""

    args: argparse.Namespace
    client: Pynector
    state: OutputState
    reporter: Reporter
    format: OutputFormat
    stopped_by: int | None
    bad: int
    elapsed: float
    write_error: OSError | None
    read_error: OSError | None

    def requests_to_send(self) -> Iterator[tuple[RequestLine, Secrets, int]]: ...

    def bad_line(self, number: int, message: str) -> None: ...

    def append(self, data: bytes, ok: bool, attempts: int = 1) -> None: ...

    def sync(self) -> None: ...


@dataclass(slots=True)
class _Pending:
    request: RequestLine
    secrets: Secrets
    group: str
    done: bool = False


class RemoteRun:
    """One ``pynector batch --via batch-api`` run (see the module docstring).

    Args:
        ledger: The batch's bookkeeping: reading IN, OUT, counting, the progress.
        api: The provider's Batch API.
    """

    def __init__(self, ledger: _Ledger, api: BatchAPI) -> None:
        args = ledger.args
        self.ledger = ledger
        self.api = api
        self.args = args
        self.poll_interval: float = args.poll_interval or POLL_INTERVAL
        size = args.max_batch_requests
        self.max_requests = min(size, api.max_requests) if size else api.max_requests
        self.state = _State.load(state_path(args.output), api.provider, args.input)
        self.requests: dict[str, _Pending] = {}
        self.created = 0
        self.cancelled: list[str] = []
        self.left_running = 0
        self._shown: dict[str, tuple[str, int]] = {}
        self._counts: dict[str, tuple[int, int]] = {}  # batch id -> (done, total), polled
        ledger.reporter.remote = self.progress_text

    # -- creating the batches -------------------------------------------------------------

    async def _submit(self) -> None:
        """Read IN; create a batch of every group's requests not done and not in a batch."""
        ledger, api = self.ledger, self.api
        pending = self.state.pending()
        chunks: dict[str, list[tuple[int, bytes]]] = {}
        sizes: dict[str, int] = {}
        for request, secrets, _tokens in ledger.requests_to_send():
            custom_id = str(key_id(request.id, OutputFormat.OPENAI))
            try:
                group, line = api.request_line(custom_id, request.data)
            except LineError as exc:
                ledger.bad += 1
                ledger.bad_line(request.line, f"skipped: {exc}")
                ledger.reporter.advance(None)
                continue
            if custom_id in self.requests:
                ledger.bad += 1
                ledger.bad_line(
                    request.line,
                    f"skipped: the id {request.id!r} is the Batch API's custom_id "
                    f"{custom_id!r} of an earlier line too (first use wins)",
                )
                ledger.reporter.advance(None)
                continue
            # Only the id and line number stay (the data is in the batch's upload).
            kept = replace(request, data=None)
            self.requests[custom_id] = _Pending(kept, secrets, group)
            if any(item.holds(group, request.line) for item in pending):
                continue  # created by an earlier run: its results are collected below
            chunk = chunks.setdefault(group, [])
            size = len(line) + 1
            if chunk and (len(chunk) >= self.max_requests or sizes[group] + size > api.max_bytes):
                await self._create(group, chunk)
                chunk.clear()
                sizes[group] = 0
            chunk.append((request.line, line))
            sizes[group] = sizes.get(group, 0) + size
        for group, chunk in chunks.items():
            if chunk:
                await self._create(group, chunk)

    async def _create(self, group: str, chunk: list[tuple[int, bytes]]) -> None:
        import anyio

        # Shielded: a batch created at the provider is always recorded, even when
        # Ctrl-C comes during its upload.
        with anyio.CancelScope(shield=True):
            batch_id = await self.api.create(group, [line for _number, line in chunk])
        remote = _Remote(batch_id, group, chunk[0][0], chunk[-1][0], len(chunk))
        self.state.batches.append(remote)
        self.state.save()
        self.created += 1
        requests = "1 request" if len(chunk) == 1 else f"{len(chunk)} requests"
        self.ledger.reporter.note(
            f"created batch {batch_id} at {self.api.provider}: {requests} "
            f"({group}, lines {remote.first_line}-{remote.last_line})"
        )

    # -- polling and collecting ------------------------------------------------------------

    async def _poll(self) -> None:
        import anyio

        while True:
            pending = self.state.pending()
            if not pending:
                return
            for remote in pending:
                try:
                    await self._poll_one(remote)
                except Exception as exc:
                    if not getattr(exc, "retryable", False):
                        raise
                    # A provider's hiccup (429, 5xx, a dropped connection): try again at
                    # the next poll; results already written are skipped then.
                    self.ledger.reporter.note(f"batch {remote.id}: polling failed ({exc})")
            if self.state.pending():
                await anyio.sleep(self.poll_interval)

    def progress_text(self) -> str:
        """``remote: N batches running, done/total done`` for the progress."""
        running = len(self.state.pending())
        done = sum(done for done, _total in self._counts.values())
        total = sum(total for _done, total in self._counts.values())
        batches = "1 batch" if running == 1 else f"{running} batches"
        return f"remote: {batches} running, {done}/{total} done"

    async def _poll_one(self, remote: _Remote) -> None:
        status = await self.api.status(remote.id)
        self._counts[remote.id] = (status.done, status.total or remote.requests)
        shown = (status.state, status.done)
        if self._shown.get(remote.id) != shown:
            self._shown[remote.id] = shown
            self.ledger.reporter.note(
                f"batch {remote.id}: {status.state}, {status.done}/"
                f"{status.total or remote.requests} done"
            )
        if status.ended:
            await self._collect(remote, status)

    async def _collect(self, remote: _Remote, status: RemoteStatus) -> None:
        """Write the results of an ended batch, then mark it written in the state file."""
        from ._ledger import id_key

        ledger, fmt = self.ledger, self.ledger.format
        done_ok, done_failed = ledger.state.ok, ledger.state.failed
        provider = self.api.provider
        lines = await self.api.results(remote.id)
        unreadable: set[str] = set()
        for raw in lines:
            if not raw.strip():
                continue
            try:
                custom_id = str(json.loads(raw)["custom_id"])
            except (ValueError, KeyError, TypeError):
                ledger.reporter.note(f"batch {remote.id}: skipped a result line that has no id")
                continue
            entry = self.requests.get(custom_id)
            if entry is None or entry.done:
                continue  # written by an earlier run, or not a request of this input
            key = id_key(key_id(entry.request.id, fmt))
            if key in done_ok or key in done_failed:
                continue
            try:
                record = provider_record(raw, provider, entry.request)
            except (ValueError, KeyError, TypeError, AttributeError):
                ledger.reporter.note(
                    f"batch {remote.id}: the result of {custom_id!r} is not a {provider} "
                    "result line; it is sent again on resume"
                )
                unreadable.add(custom_id)
                continue
            entry.done = True
            ledger.append(render(record, fmt, entry.secrets.dumps), record.ok)
        for custom_id, entry in self.requests.items():
            if entry.done or custom_id in unreadable:
                continue
            if not remote.holds(entry.group, entry.request.line):
                continue
            key = id_key(key_id(entry.request.id, fmt))
            if key in done_ok or key in done_failed:
                continue
            entry.done = True
            record = _missing_record(entry.request, status)
            ledger.append(render(record, fmt, entry.secrets.dumps), False, 0)
        ledger.sync()  # the results reach the disk before the state says they are written
        remote.written = True
        self.state.save()

    # -- the whole run ---------------------------------------------------------------------

    async def _watch_signals(self, work: Any, *, task_status: Any) -> None:
        import anyio

        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                if self.ledger.stopped_by is None:
                    self.ledger.stopped_by = signum
                work.cancel()

    async def run(self) -> None:
        """Create the batches not created yet, poll them, write their results."""
        import time

        start = time.perf_counter()
        try:
            await self._run()
        finally:
            self.ledger.elapsed = time.perf_counter() - start

    async def _run(self) -> None:
        import anyio

        from pynector.errors import PynectorError

        failure: Exception | None = None
        async with self.ledger.client, anyio.create_task_group() as group:
            work = anyio.CancelScope()
            main_thread = threading.current_thread() is threading.main_thread()
            if sys.platform != "win32" and main_thread:
                await group.start(self._watch_signals, work)
            with work:
                try:
                    await self._submit()
                    await self._poll()
                except PynectorError as exc:  # a pynector.errors.TimeoutError is an OSError
                    failure = exc
                except OSError as exc:  # writing OUT (disk full, ...) or reading IN failed
                    if self.ledger.write_error is None:
                        self.ledger.read_error = exc
                except Exception as exc:  # raised below, outside the task group
                    failure = exc
            if self.ledger.stopped_by is not None:
                with anyio.CancelScope(shield=True):
                    await self._interrupted()
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _interrupted(self) -> None:
        """After Ctrl-C or SIGTERM: cancel the remote batches, or say how to collect them."""
        import anyio

        pending = [remote.id for remote in self.state.pending()]
        if not pending:
            return
        cancel = bool(self.args.cancel_on_interrupt)
        if not cancel and _interactive():
            self.ledger.reporter.stop()
            question = (
                f"Cancel the {len(pending)} remote batch(es) at {self.api.provider} "
                f"({', '.join(pending)})? Unless cancelled they keep running. [y/N] "
            )
            answer = await anyio.to_thread.run_sync(_ask, question, abandon_on_cancel=True)
            cancel = answer.strip().lower() in ("y", "yes")
        if not cancel:
            self.left_running = len(pending)
            return
        for batch_id in pending:
            try:
                await self.api.cancel(batch_id)
            except Exception as exc:  # the others are still asked
                self.ledger.reporter.note(f"could not cancel batch {batch_id}: {exc}")
                continue
            self.cancelled.append(batch_id)
            self.ledger.reporter.note(f"cancelled batch {batch_id} at {self.api.provider}")

    def summary_rows(self, rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The live run's summary, without its timings of requests, plus the batches."""
        shown = [(name, value) for name, value in rows if name not in _LIVE_ROWS]
        at = next((i for i, (name, _) in enumerate(shown) if name == "wall time"), len(shown))
        shown.insert(at, ("remote batches", f"{len(self.state.batches)} ({self.created} new)"))
        return shown

    def closing_notes(self) -> list[str]:
        """What the user should know at the end of the run."""
        notes = []
        state_file = self.state.path
        if self.cancelled:
            notes.append(
                f"pynector batch: cancelled {len(self.cancelled)} remote batch(es). Run the "
                "same command again to write what they finished; the rest are written as "
                "failed (batch_cancelled), and --retry-failed sends them in a new batch."
            )
        elif self.left_running:
            notes.append(
                f"pynector batch: {self.left_running} remote batch(es) keep running at "
                f"{self.api.provider} (recorded in {state_file}). Run the same command again "
                "to collect their results; pass --cancel-on-interrupt to cancel them on "
                "Ctrl-C instead."
            )
        return notes


def _interactive() -> bool:
    with contextlib.suppress(ValueError, OSError):
        return sys.stdin.isatty() and sys.stderr.isatty()
    return False


def _ask(question: str) -> str:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline()
