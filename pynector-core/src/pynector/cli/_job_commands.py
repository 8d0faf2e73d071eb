"""``pynector batch status`` and ``pynector batch export``: a job's counts and its results.

``pynector batch status --store URL --job NAME [--json]`` prints where the job
stands (done, failed, in flight, queued, workers alive, results per second).
``pynector batch export --store URL --job NAME -o ALL.jsonl`` writes every
result of the job once, in input order; each line goes through
:func:`write_result`, the one place an output format applies.

Both are reached through :func:`main` (``pynector batch status ...`` is
dispatched here before ``pynector batch IN.jsonl`` parses its arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ._errors import UsageError
from ._formats import OutputFormat, pynector_record, render

if TYPE_CHECKING:
    from pynector.concurrency import Job, JobStatus, Store

__all__ = ["JOB_COMMANDS", "main", "write_result"]

JOB_COMMANDS = ("status", "export")
"""The words after ``pynector batch`` that name a job command, not an input file."""

EXIT_OK = 0
EXIT_UNFINISHED = 1
EXIT_USAGE = 2
_EXPORT_CHUNK = 1000  # lines per round trip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pynector batch",
        description="Look at a job worked by `pynector batch --store URL --job NAME`.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--store",
            metavar="URL",
            help="the job's shared store, e.g. 'redis://127.0.0.1:6379/0'; also PYNECTOR_STORE",
        )
        sub.add_argument("--job", metavar="NAME", required=True, help="the job's name")

    status = commands.add_parser(
        "status",
        help="where a job stands: done, failed, in flight, workers alive, rate",
        description="Print where the job stands. Exit status 0 when every request has its "
        "result, 1 while some have not.",
    )
    common(status)
    status.add_argument(
        "--lease",
        type=float,
        default=None,
        metavar="SECONDS",
        help="workers seen within this long count as alive (default 30, the workers' --lease)",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(command="status")

    export = commands.add_parser(
        "export",
        help="write every result of a job once, in input order",
        description="Write every result recorded in the job to one file, each once, in "
        "input order. Exit status 0 when every request had its result, 1 when some had not "
        "(what is there is written).",
    )
    common(export)
    export.add_argument(
        "-o",
        "--output",
        metavar="ALL.jsonl",
        type=Path,
        required=True,
        help="the file to write (replaced); '-' for standard output",
    )
    export.add_argument(
        "--output-format",
        choices=[fmt.value for fmt in OutputFormat],
        default=OutputFormat.PYNECTOR.value,
        help="the shape of each line: pynector (default: the result lines of pynector batch), "
        "openai (the OpenAI Batch API's output lines) or anthropic (Message Batches results)",
    )
    export.set_defaults(command="export")
    return parser


def write_result(output: BinaryIO, line: str, output_format: str) -> None:
    """Write one result line of the job to ``output`` in ``output_format``.

    Args:
        output: The export's file (binary).
        line: A pynector result line (JSON, without its newline).
        output_format: The ``--output-format`` chosen.
    """
    if output_format == OutputFormat.PYNECTOR:
        output.write(line.encode("utf-8", "backslashreplace") + b"\n")
    else:
        output.write(render(pynector_record(line), OutputFormat(output_format)))


def _open_job(args: argparse.Namespace) -> tuple[Store, Job]:
    from pynector.concurrency import MEMORY_URL, job_store
    from pynector.errors import ConfigurationError
    from pynector.registry import open_store

    url = args.store or os.environ.get("PYNECTOR_STORE") or MEMORY_URL
    try:
        store = open_store(url)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    jobs = job_store(store)
    if jobs is None:
        raise UsageError(
            f"--job needs a shared store such as redis:// (--store redis://HOST:6379/0, or "
            f"PYNECTOR_STORE); the store {store.url} holds no jobs"
        )
    try:
        return store, jobs.job(args.job, ttl=None)
    except ConfigurationError as exc:
        raise UsageError(f"--job: {exc}") from None


def status_rows(status: JobStatus) -> list[tuple[str, str]]:
    """The rows ``pynector batch status`` prints."""
    expires = (
        "never (kept)"
        if status.expires_in is None
        else f"in {status.expires_in / 86400:.1f} days"
        if status.expires_in >= 86400
        else f"in {status.expires_in / 3600:.1f} hours"
    )
    return [
        ("job", status.name),
        ("state", status.state),
        ("requests", str(status.requests)),
        ("done", str(status.done)),
        ("  succeeded", str(status.succeeded)),
        ("  failed", str(status.failed)),
        ("in flight", str(status.in_flight)),
        ("queued", str(status.queued)),
        ("workers alive", str(status.workers)),
        ("results/second", f"{status.rate:.1f}"),
        ("bad lines", str(status.bad_lines)),
        ("duplicate ids", str(status.duplicates)),
        ("input", f"{status.input.size} bytes, sha256 {status.input.sha256}"),
        ("expires", expires),
    ]


async def _status(args: argparse.Namespace, store: Store, job: Job) -> int:
    from pynector.concurrency import DEFAULT_LEASE

    try:
        status = await job.status(DEFAULT_LEASE if args.lease is None else args.lease)
    finally:
        await store.aclose()
    if args.json:
        shown: dict[str, Any] = {
            "job": status.name,
            "state": status.state,
            "requests": status.requests,
            "done": status.done,
            "succeeded": status.succeeded,
            "failed": status.failed,
            "in_flight": status.in_flight,
            "queued": status.queued,
            "workers": status.workers,
            "rate": status.rate,
            "bad_lines": status.bad_lines,
            "duplicates": status.duplicates,
            "input": {"size": status.input.size, "sha256": status.input.sha256},
            "expires_in": status.expires_in,
            "finished": status.finished,
        }
        print(json.dumps(shown))
    else:
        rows = status_rows(status)
        width = max(len(name) for name, _value in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
    return EXIT_OK if status.finished else EXIT_UNFINISHED


async def _export(args: argparse.Namespace, store: Store, job: Job, output: BinaryIO) -> int:
    written = 0
    try:
        status = await job.status()
        after: int | None = 0
        while after is not None:
            lines, after = await job.results(after, _EXPORT_CHUNK)
            for line in lines:
                write_result(output, line, args.output_format)
            written += len(lines)
    finally:
        await store.aclose()
    missing = status.requests - written
    where = "standard output" if output is sys.stdout.buffer else str(args.output)
    note = f"pynector batch export: {written} results of job {job.name} written to {where}"
    if status.state != "loaded" or missing > 0:
        unfinished = "its input is still loading" if status.state != "loaded" else ""
        unfinished = unfinished or f"{missing} requests have no result yet"
        sys.stderr.write(f"{note}; the job is not finished: {unfinished}\n")
        return EXIT_UNFINISHED
    sys.stderr.write(note + "\n")
    return EXIT_OK


def _run_export(args: argparse.Namespace, store: Store, job: Job) -> int:
    import anyio

    if str(args.output) == "-":
        return anyio.run(_export, args, store, job, sys.stdout.buffer)
    with open(args.output, "wb") as output:
        status = anyio.run(_export, args, store, job, output)
        output.flush()
        os.fsync(output.fileno())
    return status


def main(argv: Sequence[str]) -> int:
    """Run ``pynector batch status|export ...`` (``argv`` starts with the command)."""
    import anyio

    from pynector.errors import ConfigurationError, PynectorError

    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else EXIT_USAGE
    try:
        store, job = _open_job(args)
        if args.command == "status":
            return anyio.run(_status, args, store, job)
        return _run_export(args, store, job)
    except UsageError as exc:
        sys.stderr.write(f"pynector batch {args.command}: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"pynector batch {args.command}: {exc.strerror or exc}\n")
        return EXIT_UNFINISHED
    except PynectorError as exc:
        sys.stderr.write(f"pynector batch {args.command}: {exc}\n")
        return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_UNFINISHED
