"""The ``pynector`` command (also ``python -m pynector``), and what transports tell it.

:func:`main` runs the command. :class:`CLISupport` is what a transport's
distribution returns from its ``pynector_cli_support`` hook to tell the command
line how to build its requests, read batch lines, estimate tokens and show its
replies (see ``docs/plugins.md``); :class:`RequestWords`, :class:`UsageError`,
:class:`LineError`, :func:`check_id`, :func:`jsonable` and :func:`bytes_json`
are what such a support is written with; :class:`BatchAPI` and
:class:`RemoteStatus` are what its ``batch_api`` returns for ``pynector batch
--via batch-api``.

Each subcommand is an ``add_parser(subcommands)`` function that adds its
subparser and stores its handler (parsed arguments -> exit code) with
``set_defaults(handler=...)``. A subcommand that lives in its own module is
enabled by listing its ``add_parser`` in :data:`COMMANDS`. Handlers import what
they need when they run, so ``pynector --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pynector._version import __version__

from ._errors import LineError as LineError
from ._errors import UsageError as UsageError
from ._json import bytes_json as bytes_json
from ._json import jsonable as jsonable
from ._support import BatchAPI as BatchAPI
from ._support import BatchAPILine as BatchAPILine
from ._support import CLISupport as CLISupport
from ._support import RemoteStatus as RemoteStatus
from ._support import RequestWords as RequestWords
from ._support import check_id as check_id
from ._support import read_batch_api_line as read_batch_api_line

if TYPE_CHECKING:
    from ._command import Subcommands

__all__ = [
    "BatchAPI",
    "BatchAPILine",
    "CLISupport",
    "LineError",
    "RemoteStatus",
    "RequestWords",
    "UsageError",
    "build_parser",
    "bytes_json",
    "check_id",
    "jsonable",
    "main",
    "read_batch_api_line",
]

from ._command import Handler


def _add_transports_parser(subcommands: Subcommands) -> None:
    from ._transports import add_transports_parser

    add_transports_parser(subcommands)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``pynector`` argument parser with every subcommand in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="pynector",
        description="Async connector framework: inspect what is installed and send requests.",
    )
    parser.add_argument("--version", action="version", version=f"pynector {__version__}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add_parser in COMMANDS:
        add_parser(subcommands)
    return parser


def _add_demo_parser(subcommands: Subcommands) -> None:
    from ._demo import add_demo_parser

    add_demo_parser(subcommands)


def _add_request_parser(subcommands: Subcommands) -> None:
    from ._request import add_request_parser

    add_request_parser(subcommands)


def _add_batch_parser(subcommands: Subcommands) -> None:
    from ._batch import add_batch_parser

    add_batch_parser(subcommands)
    subcommands.choices["batch"].set_defaults(handler=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    """``pynector batch``: of a file alone, or as a worker of ``--job`` (its own module)."""
    if args.job is not None and not args.dry_run:
        from ._job import run_job

        return run_job(args)
    from ._batch import run_batch

    return run_batch(args)


COMMANDS: list[Callable[[Subcommands], None]] = [
    _add_transports_parser,
    _add_request_parser,
    _add_batch_parser,
    _add_demo_parser,
]
"""The ``add_parser`` function of every subcommand, in ``--help`` order."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pynector`` command.

    Args:
        argv: The arguments after the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 for a usage error, 130 when interrupted.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    if len(words) >= 2 and words[0] == "batch" and words[1] in ("status", "export"):
        # A job's commands: `pynector batch IN.jsonl` takes its first word as a file.
        from ._job_commands import main as job_main

        return job_main(words[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
