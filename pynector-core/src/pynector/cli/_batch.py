"""``pynector batch IN.jsonl -o OUT.jsonl``: a resumable batch of requests from a file.

The client's streaming batch (:meth:`pynector.Pynector.batch`) pulls request
lines lazily from the input, at most ``--concurrency`` in flight (``auto``: a
limit that adapts to the server), and yields
each result, with its attempts, as it finishes. Each result is appended to the
output as one JSON line and flushed as soon as it is known, so a crash, a
kill or Ctrl-C leaves a valid file, and running the same command again skips
the ids already in it. The output is the ledger of the run: a
regular file, locked while the batch writes it, synced to disk every second,
on exit and on a signal. Memory stays flat in the number of lines: ids are kept
as 8-byte digests and latencies in a fixed histogram.

The file formats and the output schema are in ``_ledger.py``, the output
formats (``--output-format``) in ``_formats.py``, the providers' Batch APIs
(``--via batch-api``) in ``_batch_api.py``, and all of them in ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from pynector.concurrency import TokenBudgetError

from ._arguments import (
    add_client_arguments,
    add_transport_arguments,
    check_transport,
    cli_message,
    cli_usage_error,
    client_config,
    transport_options,
    whole_number,
)
from ._batch_api import add_batch_api_arguments, check_batch_api_arguments
from ._errors import UsageError
from ._formats import OutputFormat, key_id, live_record, render
from ._json import error_json
from ._progress import Reporter, make_reporter, print_summary
from ._secrets import Secrets, request_secrets
from ._tokens import over_tpm

if TYPE_CHECKING:
    from pynector import BatchResult
    from pynector._client import Pynector
    from pynector.concurrency import Store, TokenLimiter

    from ._command import Subcommands
    from ._ledger import OutputState, RequestLine, RequestParser
    from ._support import CLISupport

__all__ = ["NO_OPTIONS", "Batch", "JobSetup", "add_batch_parser", "run_batch", "unreadable"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
_SHOWN_BAD_LINES = 20  # in a real run; --dry-run lists every bad line
_SYNC_INTERVAL = 1.0  # seconds between two fsyncs of OUT while results are written
_FIRST_CHECKED = 10_000  # lines read, at most, to find the first request to send
NO_OPTIONS: Mapping[str, Any] = {}  # a line's own transport options: the command line's

_EPILOG = """\
exit status:
  0    every request succeeded (including those done by an earlier run) and
       every line was a valid request
  1    some request failed, or some lines were skipped (bad or duplicate ids),
       or the output could not be written during the run
  2    usage error: bad options, unknown transport, missing input, output not
       writable or not a regular file, a first request the transport rejects;
       nothing was sent
  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM: run the same command
       again to resume

With --store redis://... --job NAME, any number of workers on any machines
work one job (docs/distributed.md); see it with
  pynector batch status --store URL --job NAME
  pynector batch export --store URL --job NAME -o ALL.jsonl

Each input line is a JSON object: the request data, with an optional top-level
"id" (else the line number is the id). OpenAI Batch API lines (custom_id,
method, url, body) and Anthropic Message Batches lines (custom_id, params) are
accepted too. Each output line is {"id", "line", "ok", "attempts", "elapsed",
"response" or "error"}, or with --output-format openai|anthropic the
provider's batch output line. See docs/cli.md.
"""


def add_batch_parser(subcommands: Subcommands) -> None:
    """Add ``pynector batch``."""
    parser = subcommands.add_parser(
        "batch",
        help="send every request of a JSONL file, appending results to OUT (resumable)",
        description=(
            "Send the requests of IN (one JSON object per line) through any installed "
            "transport, with bounded concurrency, a rate limit and retries. Each result is "
            "appended to OUT and flushed as it finishes; running the same command again "
            "resumes, skipping ids already in OUT."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input",
        metavar="IN.jsonl",
        type=Path,
        nargs="?",
        help="the requests (with --job: optional on a worker joining a job already loaded)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.jsonl",
        type=Path,
        required=True,
        help="where results are appended (created if missing): a regular file, read back to resume",
    )
    add_transport_arguments(parser)
    add_client_arguments(parser, retries=3)
    group = parser.add_argument_group("batch")
    group.add_argument(
        "-c",
        "--concurrency",
        type=_concurrency,
        default=10,
        metavar="N|auto",
        help="most requests in flight (default 10), or 'auto': a limit that starts low and "
        "follows the server (429/503 and timeouts cut it), up to PYNECTOR_MAX_CONNECTIONS "
        "(default 100); the progress shows it",
    )
    group.add_argument(
        "--rate",
        metavar="RATE",
        help="most requests started per second or minute: 10 or '10/s', '600/m'",
    )
    group.add_argument(
        "--tpm",
        type=whole_number,
        metavar="TOKENS",
        help="tokens-per-minute budget: each attempt waits until its estimated tokens "
        "(text / 4 + max_tokens) fit in the last minute; the reply's usage then replaces "
        "the estimate",
    )
    shared = parser.add_argument_group(
        "shared limits",
        "keep --rate, --tpm and --shared-concurrency in a store shared by every process "
        "and machine that uses the same store and limit key (see docs/limits.md)",
    )
    shared.add_argument(
        "--store",
        metavar="URL",
        help="where the limits live: 'memory://' (this process, the default) or e.g. "
        "'redis://127.0.0.1:6379/0' (pip install 'pynector[redis]'); also PYNECTOR_STORE",
    )
    shared.add_argument(
        "--limit-key",
        metavar="KEY",
        help="the name the limits are shared under (never a secret); default: the transport "
        "and its target, e.g. 'sdk:openai'",
    )
    shared.add_argument(
        "--shared-concurrency",
        type=whole_number,
        metavar="N",
        help="most requests in flight across every process sharing the limit key",
    )
    shared.add_argument(
        "--store-failure",
        choices=("closed", "open"),
        help="when the store is unreachable: wait for it, then fail ('closed', the default), "
        "or fall back to per-process limits ('open')",
    )
    shared.add_argument(
        "--job",
        metavar="NAME",
        help="work the job NAME in the --store together with every other worker of it, on "
        "any machine: the first worker loads IN, each request is claimed by one worker, each "
        "result recorded once (see `pynector batch status` and `pynector batch export`, and "
        "docs/distributed.md)",
    )
    shared.add_argument(
        "--lease",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="with --job: a worker's claims are taken over by others when it has not renewed "
        "them for this long (it died); default 30",
    )
    shared.add_argument(
        "--keep",
        action="store_true",
        help="with --job: keep the job in the store until deleted (default: it expires 7 days "
        "after its last activity)",
    )
    group.add_argument(
        "--retry-failed",
        action="store_true",
        help="remove the failed results from OUT first, so their requests are sent again",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="check IN (each request as the transport would), OUT and the transport "
        "options; send nothing, write nothing",
    )
    group.add_argument(
        "--output-format",
        choices=[fmt.value for fmt in OutputFormat],
        default=OutputFormat.PYNECTOR.value,
        help="how each result line is written: pynector's own (the default), the OpenAI "
        "Batch API output line or the Anthropic Message Batches result line; a resumed "
        "run must use the format OUT was written in",
    )
    add_batch_api_arguments(parser)
    group.add_argument(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="auto",
        help="a rich bar on a terminal, plain lines on stderr otherwise (default auto)",
    )
    parser.set_defaults(handler=run_batch)


# -- the run ---------------------------------------------------------------------------


class Batch:
    """One ``pynector batch`` run: reads IN, sends, appends to OUT, counts."""

    def __init__(
        self,
        args: argparse.Namespace,
        client: Pynector,
        parser: RequestParser,
        state: OutputState,
        output: BinaryIO | None,
        secrets: Secrets,
        reporter: Reporter,
        budget: TokenLimiter | None,
        support: CLISupport,
    ) -> None:
        from ._ledger import IdSet

        self.args = args
        self.support = support
        self.transport: str = args.transport.strip().lower()
        self.format = OutputFormat(getattr(args, "output_format", OutputFormat.PYNECTOR))
        self.client = client
        self.parser = parser
        self.state = state
        self.output = output
        self.secrets = secrets
        self.reporter = reporter
        self.budget = budget
        self.retries: int = args.retries
        self.seen = IdSet()
        self.latencies = reporter.latencies  # the progress shows the same p50/p95
        self.stopped_by: int | None = None
        self.write_error: OSError | None = None
        self.read_error: OSError | None = None
        self.validate = _validator(client)
        self.synced = 0  # results written when OUT was last synced to disk
        self.lines = 0
        self.sent = 0
        self.succeeded = 0
        self.failed = 0
        self.done_ok = 0
        self.done_failed = 0
        self.bad = 0
        self.duplicates = 0
        self.rejected = 0
        self.over_budget = 0
        self.extra_attempts = 0
        self.in_flight = 0  # pulled by the batch, result not written yet
        # The line, secrets and token estimate of each request in flight, by batch index.
        self.pending: dict[int, tuple[RequestLine, Secrets, int]] = {}
        self.elapsed = 0.0

    # -- input --------------------------------------------------------------------

    def requests_to_send(self) -> Any:
        """Yield ``(request, secrets, tokens)`` to send, lazily; report and skip the others.

        Every step that reads the line is guarded: a line that cannot be read or
        prepared for any reason is a bad line, never the end of the run.
        """
        from ._ledger import LineError, id_key, iter_lines

        parse = self.parser.parse
        seen, ok, failed = self.seen, self.state.ok, self.state.failed
        advance = self.reporter.advance
        secrets = self.secrets
        estimate = self.support.estimate_tokens
        fmt = self.format
        for number, raw in iter_lines(self.args.input):
            if self.stopped_by is not None:
                return
            self.lines += 1
            try:
                request = parse(number, raw)
                key = id_key(key_id(request.id, fmt))
                # The line's own credentials (headers, URL, params) are scrubbed too.
                line_secrets = secrets + request_secrets(request.data)
                tokens = estimate(request.data) if self.args.tpm is not None else 0
            except Exception as exc:
                why = str(exc) if isinstance(exc, LineError) else unreadable(exc)
                self.bad += 1
                self.bad_line(number, f"skipped: {why}")
                advance(None)
                continue
            if not seen.add(key):
                self.duplicates += 1
                self.bad_line(number, f"skipped: duplicate id {request.id!r} (first use wins)")
                advance(None)
                continue
            if key in ok:
                self.done_ok += 1
                self.reporter.resume()
                continue
            if key in failed:
                self.done_failed += 1
                self.reporter.resume()
                continue
            yield request, line_secrets, tokens

    def bad_line(self, number: int, message: str) -> None:
        shown = self.bad + self.duplicates
        if self.args.dry_run or shown <= _SHOWN_BAD_LINES:
            self.reporter.note(f"{self.args.input}:{number}: {message}")
        elif shown == _SHOWN_BAD_LINES + 1:
            self.reporter.note(
                f"{self.args.input}: more bad lines follow; the summary counts them "
                "(--dry-run lists them all)"
            )

    # -- sending ------------------------------------------------------------------

    def _jobs(self) -> Iterator[tuple[Any, Mapping[str, Any]]]:
        """The batch's input: each request to send as ``(data, {})``, its line kept aside.

        The batch numbers what it pulls from 0, in order: the line, secrets and
        token estimate wait under that index until the result comes back.
        """
        pending = self.pending
        for index, job in enumerate(self.requests_to_send()):
            pending[index] = job
            self.in_flight += 1
            yield job[0].data, NO_OPTIONS

    async def _before_attempt(self, index: int, data: Any, attempt: int) -> None:
        """Charge the CLI's estimate to ``--tpm`` (a transport that makes no estimate)."""
        budget = self.budget
        assert budget is not None
        tokens = self.pending[index][2]
        if tokens > budget.limit:
            raise over_tpm(tokens, budget.limit)
        await budget.reserve(tokens)

    def _record(self, result: BatchResult[Any]) -> None:
        """Write the result line of one finished request."""
        request, secrets, _tokens = self.pending.pop(result.index)
        self.in_flight -= 1
        error, attempts = result.error, result.attempts
        if error is None:
            self._write(request, secrets, True, result.value, attempts, result.elapsed)
            return
        if isinstance(error, TokenBudgetError):  # refused before its first attempt started
            self.over_budget += 1
            attempts = 0
            error = over_tpm(error.tokens, self.args.tpm)
        self._write(request, secrets, False, error, attempts, result.elapsed)

    def _write(
        self,
        request: RequestLine,
        secrets: Secrets,
        ok: bool,
        outcome: Any,
        attempts: int,
        elapsed: float,
    ) -> None:
        """Append the result line: the reply (``ok``) or the error ``outcome``."""
        data, ok = self._result_line(request, secrets, ok, outcome, attempts, elapsed)
        self.latencies.add(elapsed)  # before the progress line that append may print
        self.append(data, ok, attempts)

    def _result_line(
        self,
        request: RequestLine,
        secrets: Secrets,
        ok: bool,
        outcome: Any,
        attempts: int,
        elapsed: float,
        fmt: OutputFormat | None = None,
    ) -> tuple[bytes, bool]:
        """The result line (with its newline) and whether it succeeded.

        The id and line number are the user's keys: written exactly as read.
        Only the reply or the error is scrubbed of secrets (in a provider
        format, the whole line). ``fmt``: the output format, if not the run's.
        """
        if fmt is None:
            fmt = self.format
        try:
            shown = self._json(ok, outcome, secrets)
            request_id = getattr(outcome, "_request_id", None) if ok else None
            record = live_record(request.id, request.line, ok, shown, attempts, elapsed, request_id)
            data = render(record, fmt, secrets.dumps)
        except Exception as exc:  # a reply that cannot be shown as JSON (nested too deeply, ...)
            what = "reply" if ok else "error"
            ok = False
            shown = {
                "type": type(exc).__name__,
                "message": f"the {what} could not be written as JSON: {unreadable(exc)}",
                "retryable": False,
            }
            record = live_record(request.id, request.line, False, shown, attempts, elapsed)
            data = render(record, fmt, secrets.dumps)
            self.reporter.note(
                secrets.scrub(
                    f"{self.args.input}:{request.line}: its {what} could not be written as JSON "
                    f"({unreadable(exc)}); recorded as failed"
                )
            )
        return data, ok

    def append(self, data: bytes, ok: bool, attempts: int = 1) -> None:
        """Append one result line to OUT and count it.

        Raises:
            OSError: If OUT refused it (kept in :attr:`write_error`).
        """
        output = self.output
        assert output is not None
        try:
            while data:  # a regular file takes it in one write; a partial write is finished
                written = output.write(data)
                if not written:
                    raise OSError(errno.EIO, "the output took none of the bytes written to it")
                data = data[written:]
        except OSError as exc:
            self.write_error = exc
            raise
        self.sent += 1
        if ok:
            self.succeeded += 1
        else:
            self.failed += 1
        if attempts > 1:
            self.extra_attempts += attempts - 1
        self.reporter.advance(ok, attempts)

    def _json(self, ok: bool, outcome: Any, secrets: Secrets) -> Any:
        """The ``response`` (a reply) or ``error`` of a result line, as JSON."""
        support = self.support
        if ok:
            return support.reply_json(outcome, secrets)
        try:
            reply = support.error_reply(outcome)
            shown = None if reply is None else support.reply_json(reply, secrets)
        except Exception:  # an unread streamed body, for one: the message says enough
            shown = None
        return error_json(outcome, secrets, shown)

    async def _watch_signals(self, work: Any, *, task_status: Any) -> None:
        import anyio

        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                if self.stopped_by is None:
                    self.stopped_by = signum
                    self._stopping()
                    # A worker may pull its next request before the result it just
                    # handed over is written: no more than --concurrency are in flight.
                    in_flight = min(self.in_flight, self.client.concurrency_limit)
                    self.reporter.note(
                        f"{name}: starting no new requests; waiting for the {in_flight} "
                        "in flight (send it again to stop at once)"
                    )
                else:
                    self.reporter.note(
                        f"{name}: stopping now; the requests in flight are sent again on resume"
                    )
                    work.cancel()

    def _stopping(self) -> None:
        """Called once, when the first signal asks the run to stop."""

    def _requests(self) -> Iterable[tuple[Any, Mapping[str, Any]]] | AsyncIterator[Any]:
        """What the client's batch pulls: ``(data, options)`` of each request to send."""
        return self._jobs()

    async def run(self) -> None:
        """Send every request not done yet, until the input ends or a signal stops it."""
        import anyio

        start = time.perf_counter()
        try:
            async with self.client, anyio.create_task_group() as group:
                work = anyio.CancelScope()
                # Python delivers signals to the main thread only: a run started from
                # another thread (``pynector.cli.main`` in a thread) leaves them alone.
                main_thread = threading.current_thread() is threading.main_thread()
                if sys.platform != "win32" and main_thread:
                    await group.start(self._watch_signals, work)
                group.start_soon(self._sync_periodically, work)
                with work:
                    try:
                        await self._send_all()
                    except OSError as exc:  # writing OUT (disk full, ...) or reading IN failed
                        if self.write_error is None:
                            self.read_error = exc
                group.cancel_scope.cancel()
        finally:
            self.elapsed = time.perf_counter() - start

    async def _send_all(self) -> None:
        """Send the requests to send, at most ``--concurrency`` at a time.

        The one place the run meets the client's batch: each result is written
        as soon as the batch yields it (the loop body never awaits).
        """
        args = self.args
        batch = self.client.batch(
            self._requests(),
            max_concurrency=args.concurrency,
            max_retries=self.retries,
            before_attempt=None if self.budget is None else self._before_attempt,
            # --timeout is the deadline of each attempt (the client's config["timeout"]
            # too); the batch as a whole has none.
            attempt_timeout=args.timeout,
        )
        record = self._record
        async with batch as results:
            async for result in results:
                record(result)

    async def _sync_periodically(self, work: Any) -> None:
        """Flush OUT to disk every second while results are written (in a thread)."""
        import anyio

        output = self.output
        assert output is not None
        while True:
            await anyio.sleep(_SYNC_INTERVAL)
            if self.sent == self.synced or self.write_error is not None:
                continue
            self.synced = self.sent
            try:
                await anyio.to_thread.run_sync(os.fsync, output.fileno())
            except OSError as exc:  # the disk refused what was written: stop, as for a write
                self.write_error = exc
                work.cancel()
                return

    def sync(self) -> None:
        """Flush OUT to disk (on exit, after a signal or an error): results survive a power loss."""
        output = self.output
        if output is None or output.closed:
            return
        try:
            os.fsync(output.fileno())
        except OSError as exc:
            if self.write_error is None:
                self.write_error = exc

    def dry_run(self) -> None:
        """Read the whole input as a real run would, and check each request; send nothing."""
        tpm, validate = self.args.tpm, self.validate
        for request, secrets, tokens in self.requests_to_send():
            self.sent += 1
            if validate is not None:
                try:
                    validate(request.data)
                except Exception as exc:
                    self.rejected += 1
                    why = cli_message(str(exc), self.args, about_request=True)
                    why = why or type(exc).__name__
                    self.reporter.note(
                        secrets.scrub(
                            f"{self.args.input}:{request.line}: the {self.transport} transport "
                            f"rejects it: {why}; it would fail without being sent"
                        )
                    )
                    continue
            if tpm is not None and tokens > tpm:
                self.over_budget += 1
                self.reporter.note(
                    f"{self.args.input}:{request.line}: an estimated {tokens} tokens: more than "
                    f"--tpm {tpm}; it would fail without being sent"
                )

    # -- the end --------------------------------------------------------------------

    def exit_status(self) -> int:
        if self.stopped_by is not None:
            return 128 + self.stopped_by
        if self.args.dry_run:
            problems = self.bad + self.duplicates + self.rejected + self.over_budget
            return EXIT_FAILED if problems else EXIT_OK
        problems = self.failed + self.done_failed + self.bad + self.duplicates
        stopped = self.write_error is not None or self.read_error is not None
        return EXIT_FAILED if problems or stopped else EXIT_OK

    def summary_rows(self) -> list[tuple[str, str]]:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.1f} ms"

        rows = [("lines", str(self.lines))]
        if self.args.dry_run:
            rows.append(("to send", str(self.sent)))
        else:
            rows += [
                ("sent", str(self.sent)),
                ("succeeded", str(self.succeeded)),
                ("failed", str(self.failed)),
            ]
        rows.append(("already done", str(self.done_ok + self.done_failed)))
        if self.done_failed:
            rows.append(("  of which failed", str(self.done_failed)))
        rows += [("bad lines", str(self.bad)), ("duplicate ids", str(self.duplicates))]
        if self.args.dry_run and self.validate is not None:
            rows.append(("rejected by the transport", str(self.rejected)))
        if self.args.tpm is not None:
            rows.append(("over --tpm", str(self.over_budget)))
        if not self.args.dry_run:
            if self.args.concurrency == "auto":
                rows.append(("concurrency limit", f"{self.client.concurrency_limit} (auto)"))
            rate = self.sent / self.elapsed if self.elapsed > 0 else 0.0
            rows += [
                ("retries", str(self.extra_attempts)),
                ("p50 latency", ms(self.latencies.quantile(0.5))),
                ("p95 latency", ms(self.latencies.quantile(0.95))),
                ("requests/second", f"{rate:.0f}"),
                ("wall time", f"{self.elapsed:.2f} s"),
            ]
        rows.append(("output", str(self.args.output)))
        return rows

    def closing_notes(self) -> list[str]:
        notes = []
        out = self.args.output
        if self.write_error is not None:
            notes.append(
                f"pynector batch: stopped: cannot write the output {out}: "
                f"{self.write_error.strerror or self.write_error}. The results written so far "
                "are kept (a last line cut short is dropped on resume); free some space or fix "
                "the cause, then run the same command again to resume."
            )
        if self.read_error is not None:
            notes.append(
                f"pynector batch: stopped: cannot read {self.args.input}: "
                f"{self.read_error.strerror or self.read_error}. The results written so far "
                "are kept; fix the cause and run the same command again to resume."
            )
        if self.stopped_by is not None:
            name = signal.Signals(self.stopped_by).name
            notes.append(
                f"pynector batch: interrupted by {name}: {self.sent} results written to {out}. "
                "Run the same command again to resume: ids already in the output are skipped."
            )
        elif self.done_failed and not self.args.dry_run:
            notes.append(
                f"pynector batch: {_plural(self.done_failed, 'request')} failed in an earlier "
                "run; pass --retry-failed to send them again."
            )
        return notes


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def unreadable(exc: BaseException) -> str:
    """Why a line (or its reply) could not be handled, in words."""
    if isinstance(exc, RecursionError):
        return "nested too deeply (objects or arrays inside each other hundreds of levels deep)"
    return f"{type(exc).__name__}: {exc}"


def _validator(client: Pynector) -> Callable[[Any], object] | None:
    """The transport's ``validate(data)``: checks a request without sending it, if offered."""
    validate = getattr(client.transport, "validate", None)
    return validate if callable(validate) else None


# -- set-up -----------------------------------------------------------------------------


def _check_input(path: Path) -> None:
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a JSONL file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file")


def _output_problem(path: Path, exc: OSError) -> UsageError:
    parent = path.parent
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        why = "it is a directory; name a file"
    elif isinstance(exc, NotADirectoryError) or (parent.exists() and not parent.is_dir()):
        why = f"{parent} is not a directory"
    elif isinstance(exc, FileNotFoundError) and not parent.exists():
        why = f"the directory {parent} does not exist; create it first"
    else:
        full = exc.errno in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC))
        fix = "free some space" if full else "fix that"
        why = f"{exc.strerror or exc}; {fix}, or name another file"
    return UsageError(f"cannot write the output -o {path}: {why}")


_KINDS = (
    (stat.S_ISFIFO, "a pipe or FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_a_ledger(path: Path, mode: int) -> UsageError | None:
    """The usage error for an OUT that is not a regular file (``None`` when it is one)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return _output_problem(path, IsADirectoryError())
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return UsageError(
        f"-o {path} is {kind}: the output must be a regular file, because pynector batch "
        "reads it back to resume (it holds the ids already done). Write to a file, e.g. "
        "-o results.jsonl, and follow it as it grows with: tail -f results.jsonl"
    )


def _check_regular(path: Path) -> None:
    """Refuse an existing OUT that is not a regular file, without opening it (a FIFO blocks)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _output_problem(path, exc) from None
    problem = _not_a_ledger(path, mode)
    if problem is not None:
        raise problem


def _check_output_location(path: Path) -> None:
    """For --dry-run: whether OUT could be appended to; leaves no file behind."""
    _check_regular(path)
    if path.exists():
        if not os.access(path, os.W_OK):
            raise _output_problem(path, PermissionError(13, "permission denied"))
        return
    # The only faithful test (root ignores permissions, /proc refuses files): create
    # OUT and remove it again at once.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return  # created since the check above: it can be written
    except OSError as exc:
        raise _output_problem(path, exc) from None
    os.unlink(path)


def _lock(file: BinaryIO, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(
            f"{path} is being written by another `pynector batch`; wait for it to finish, "
            "or write to another file"
        ) from None
    except OSError:
        pass  # a file system without locks: carry on


def _open_output(path: Path) -> BinaryIO:
    """Open OUT for appending and lock it; refuse anything but a regular file."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    # Non-blocking: a FIFO put in OUT's place since the check fails at once instead
    # of waiting for a reader. Regular files ignore the flag.
    flags |= getattr(os, "O_NONBLOCK", 0)
    for _attempt in range(5):
        _check_regular(path)
        try:
            descriptor = os.open(path, flags, 0o644)
        except OSError as exc:
            raise _output_problem(path, exc) from None
        file: BinaryIO = open(descriptor, "ab", buffering=0)  # noqa: SIM115 - closed by run_batch
        try:
            opened = os.fstat(descriptor)
            problem = _not_a_ledger(path, opened.st_mode)
            if problem is not None:
                raise problem
            _lock(file, path)
            # Another batch's --retry-failed may have renamed a new file over OUT
            # between the open and the lock: then lock that one instead.
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (
                opened.st_dev,
                opened.st_ino,
            ):
                return file
        except BaseException:
            file.close()
            raise
        file.close()
    raise UsageError(f"{path} keeps being replaced by another program; write to another file")


def _first_request(batch: Batch, state: OutputState) -> RequestLine | None:
    """The first request a run would send (among the first lines), or ``None``."""
    from ._ledger import id_key, iter_lines

    parse = batch.parser.parse
    for count, (number, raw) in enumerate(iter_lines(batch.args.input)):
        if count >= _FIRST_CHECKED:
            return None
        try:
            request = parse(number, raw)
            key = id_key(key_id(request.id, batch.format))
        except Exception:  # a bad line: reported when the run reads it
            continue
        if key in state.ok or (key in state.failed and not batch.args.retry_failed):
            continue
        return request
    return None


def _check_first_request(batch: Batch, state: OutputState) -> None:
    """Stop before anything is sent or written if the transport rejects the first request.

    The same mistake (a ``path`` without ``--base-url``, ...) usually repeats on
    every line: the run would fail them all.
    """
    validate = batch.validate
    if validate is None:
        return
    request = _first_request(batch, state)
    if request is None:
        return
    from pynector.errors import ConfigurationError

    try:
        validate(request.data)
    except ConfigurationError as exc:
        secrets = batch.secrets + request_secrets(request.data)
        raise UsageError(
            secrets.scrub(
                f"{batch.args.input}:{request.line}: the first request to send is rejected by "
                f"the {batch.transport} transport: "
                f"{cli_message(str(exc), batch.args, about_request=True)}. "
                "Nothing was sent; fix it (--dry-run checks every line)"
            )
        ) from None
    except Exception:  # checked again, and reported, when the line is sent
        return


def _check_resumed(batch: Batch, state: OutputState, live: bool) -> None:
    """Refuse an OUT written in another format; check the first request of a live run."""
    fmt = batch.format
    other = sorted(found.value for found in state.formats if found is not fmt)
    if other:
        raise UsageError(
            f"{batch.args.output} holds results in the {' and '.join(other)} output format, "
            f"not {fmt.value}: resume with --output-format {other[0]}, or write to another file"
        )
    if live:
        _check_first_request(batch, state)


def _prepare_output(
    args: argparse.Namespace, reporter: Reporter, check: Callable[[OutputState], None]
) -> tuple[OutputState, BinaryIO | None]:
    """Open, lock and repair OUT (read it only, for --dry-run); return what it holds.

    ``check(state)`` runs after OUT is read and before anything is written to it;
    when it raises, an OUT this call created is removed again.
    """
    from ._ledger import IdSet, drop_failed, fsync_directory, repair_output, scan_output

    path: Path = args.output
    if args.dry_run:
        _check_output_location(path)
        state = scan_output(path)
        if args.retry_failed:
            state.failed = IdSet()  # a real run would send them again
        check(state)
        return state, None
    existed = path.exists()
    output = _open_output(path)
    try:
        state = scan_output(path)
        try:
            check(state)
        except UsageError:
            if not existed and state.keep == 0:
                path.unlink()  # created by this call, still empty and locked by it
            raise
        if not existed:
            fsync_directory(path.parent)  # the new file's name survives a power loss too
        if state.torn:
            reporter.note(
                f"{path}: dropped a last line cut short ({state.torn} bytes, from a crash or "
                "a kill); its request is sent again"
            )
        repair_output(output, state)
        if args.retry_failed and len(state.failed):
            # OUT stays locked: the new file is locked before it is renamed over it.
            dropped, rewritten = drop_failed(path, lambda file: _lock(file, path))
            if rewritten is not None:
                output.close()
                output = rewritten
            reporter.note(f"{path}: removed {dropped} failed results; sending them again")
            state = scan_output(path)
    except OSError as exc:
        output.close()
        raise _output_problem(path, exc) from None
    except BaseException:
        output.close()
        raise
    if state.foreign:
        shown = ", ".join(map(str, state.foreign[:5]))
        reporter.note(
            f"{path}: {len(state.foreign)} lines are not results of pynector batch "
            f"(lines {shown}{', ...' if len(state.foreign) > 5 else ''}); they are left as "
            "they are and do not count as done"
        )
    return state, output


def _create_client(args: argparse.Namespace, name: str, options: dict[str, Any]) -> Pynector:
    from pynector import Pynector
    from pynector.concurrency import MEMORY_URL, parse_rate
    from pynector.errors import ConfigurationError

    config = client_config(args)
    if args.concurrency == "auto":
        config["adaptive_concurrency"] = True  # up to max_connections: its default or env
    else:
        config["max_connections"] = args.concurrency
    if args.rate is not None:
        try:
            parse_rate(args.rate)
        except ConfigurationError:
            raise UsageError(
                f"--rate {args.rate!r} is invalid: give requests per second (10) or per "
                "second or minute as '10/s' or '600/m'"
            ) from None
        rate = args.rate.strip()
        config["rate_limit"] = float(rate) if _is_number(rate) else rate
    if args.tpm is not None:
        config["token_limit"] = f"{args.tpm}/m"  # charged by transports that estimate
    for flag, key in _SHARED_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            config[key] = value
    shared = (args.rate, args.tpm, args.shared_concurrency)
    if getattr(args, "job", None) is not None and shared == (None, None, None):
        # The workers of a job share no limit: the store keeps the job alone, and the
        # client makes no round trips of its own (20 a second, for a 429's pause only).
        config["store"] = MEMORY_URL
    try:
        return Pynector(transport_type=name, config=config, **options)
    except ConfigurationError as exc:
        raise cli_usage_error(exc, args) from exc


# argparse destinations -> the config keys they set.
_SHARED_FLAGS = (
    ("store", "store"),
    ("limit_key", "limit_key"),
    ("shared_concurrency", "shared_concurrency"),
    ("store_failure", "store_failure"),
)


def _seconds(text: str) -> float:
    """``--lease``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _concurrency(text: str) -> int | str:
    """``--concurrency``: a whole number of at least 1, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a whole number of at least 1 nor 'auto'"
        ) from None
    return whole_number(text)  # type: ignore[no-any-return]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class JobSetup(Protocol):
    """How a run becomes a worker of ``--job`` (``_job.py``; the file alone needs none)."""

    def open_store(self, args: argparse.Namespace) -> Store:
        """The shared store of the job (a usage error when it cannot hold jobs)."""
        ...

    def new_batch(self, store: Store, *batch: Any) -> Batch:
        """The run of a worker, from ``Batch``'s arguments."""
        ...


def run_batch(args: argparse.Namespace, job: JobSetup | None = None) -> int:
    """Run ``pynector batch``; return the exit status (see the epilog).

    Args:
        args: The parsed arguments.
        job: With ``--job`` (and not ``--dry-run``): how the run works the job.
    """
    from ._ledger import OutputState, RequestParser, count_lines

    secrets = Secrets()
    try:
        support = check_transport(args.transport, args)
        name, options, secrets = transport_options(args, support.header_option)
        if args.rate is not None and not args.rate.strip():
            raise UsageError("--rate is empty; give e.g. --rate 10/s")
        working_job = job is not None
        if args.input is None:
            if not working_job:
                raise UsageError(
                    "give the input file IN.jsonl (only a worker joining a job already loaded, "
                    "with --store and --job NAME, may leave it out)"
                )
        else:
            _check_input(args.input)
            if args.output.exists() and os.path.samefile(args.input, args.output):
                raise UsageError(f"{args.output} is the input file too; write results elsewhere")
        if args.job is None and (args.lease is not None or args.keep):
            raise UsageError("--lease and --keep belong to a job: add --job NAME (and --store)")
        store = job.open_store(args) if job is not None else None
        client = _create_client(args, name, options)
        reporter = make_reporter("none" if args.dry_run else args.progress, secrets)
        if args.concurrency == "auto":
            reporter.concurrency = lambda: client.concurrency_limit
        budget: TokenLimiter | None = None
        if args.tpm is not None:
            from ._tokens import PERIOD, cli_budget

            budget = cli_budget(client, args.tpm)
            if budget is not None and store is not None:
                # The CLI's own estimate is charged to the budget every worker shares.
                budget = store.token_budget(client.limit_key, args.tpm, PERIOD)
        parser = RequestParser(support, options)
        batch_args = (args, client, parser, OutputState(), None, secrets, reporter, budget, support)
        batch = (
            Batch(*batch_args)
            if job is None or store is None
            else job.new_batch(store, *batch_args)
        )
        batch_api = check_batch_api_arguments(args, support, client)
        remote = None
        if batch_api is not None and not args.dry_run:
            from ._batch_api import RemoteRun

            remote = RemoteRun(batch, batch_api)
        if args.input is None:
            check: Callable[[OutputState], None] = lambda found: None  # noqa: E731
        else:
            check = lambda found: _check_resumed(batch, found, batch_api is None)  # noqa: E731
        state, batch.output = _prepare_output(args, reporter, check)
        batch.state = state
    except UsageError as exc:
        sys.stderr.write(f"pynector batch: {secrets.scrub(str(exc))}\n")
        return EXIT_USAGE

    try:
        if args.dry_run:
            batch.dry_run()
            print_summary(batch.summary_rows(), "Dry run: nothing was sent", secrets)
            return batch.exit_status()
        import anyio

        from pynector.errors import ConfigurationError, PynectorError

        if working_job:
            # The job decides what is done; the progress counts this worker's results.
            known = args.input is not None and args.progress != "none"
            reporter.start(count_lines(args.input) if known else None)
        else:
            total = count_lines(args.input) if args.progress != "none" else None
            reporter.start(total, already_done=len(state.ok) + len(state.failed))
        try:
            anyio.run(batch.run if remote is None else remote.run)
        except PynectorError as exc:  # the transport could not even connect
            reporter.stop()
            message = cli_message(str(exc), args)
            sys.stderr.write(f"pynector batch: {secrets.scrub(message)}\n")
            return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILED
        finally:
            reporter.stop()
    finally:
        # Whatever ended the run (the end of IN, a signal, an error): the results
        # written reach the disk before the command returns.
        batch.sync()
        if batch.output is not None:
            batch.output.close()
    rows = batch.summary_rows() if remote is None else remote.summary_rows(batch.summary_rows())
    print_summary(rows, "Batch summary", secrets)
    notes = batch.closing_notes() + ([] if remote is None else remote.closing_notes())
    for note in notes:
        sys.stderr.write(secrets.scrub(note) + "\n")
    return batch.exit_status()
