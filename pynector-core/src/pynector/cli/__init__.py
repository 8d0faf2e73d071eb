"""The ``pynector`` command (also ``python -m pynector``), and what transports tell it.

:func:`main` runs the command. :class:`CLISupport` is what a transport's
distribution returns from its ``pynector_cli_support`` hook to tell the command
line how to build its requests, read batch lines, estimate tokens and show its
replies (see ``docs/plugins.md``); :class:`RequestWords`, :class:`UsageError`,
:class:`LineError`, :func:`check_id`, :func:`jsonable` and :func:`bytes_json`
are what such a support is written with.

Each subcommand is an ``add_parser(subcommands)`` function that adds its
subparser and stores its handler (parsed arguments -> exit code) with
``set_defaults(handler=...)``. A subcommand that lives in its own module is
enabled by listing its ``add_parser`` in :data:`COMMANDS`. Handlers import what
they need when they run, so ``pynector --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from pynector._version import __version__

from ._errors import LineError as LineError
from ._errors import UsageError as UsageError
from ._json import bytes_json as bytes_json
from ._json import jsonable as jsonable
from ._support import CLISupport as CLISupport
from ._support import RequestWords as RequestWords
from ._support import check_id as check_id

if TYPE_CHECKING:
    from pynector.registry import PluginInfo, TransportInfo

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
    Section = tuple[str, Sequence[TransportInfo | PluginInfo]]

__all__ = [
    "CLISupport",
    "LineError",
    "RequestWords",
    "UsageError",
    "build_parser",
    "bytes_json",
    "check_id",
    "jsonable",
    "main",
]

Handler = Callable[[argparse.Namespace], int]
"""What a subcommand runs: takes the parsed arguments, returns the exit code."""

_COLUMNS = ("NAME", "DISTRIBUTION", "VERSION", "STATUS")


def add_transports_parser(subcommands: Subcommands) -> None:
    """Add ``pynector transports``: list installed transports and plugins."""
    parser = subcommands.add_parser(
        "transports",
        help="list the installed transports and plugins and whether they load",
        description=(
            "List every transport (the pynector.transports entry points) and plugin "
            "(pynector.plugins) installed in this environment, with its distribution, "
            "version and status. Each one is imported to check it; a broken one is "
            "shown with the reason and does not change the exit status."
        ),
    )
    parser.set_defaults(handler=_run_transports)


def _run_transports(args: argparse.Namespace) -> int:
    from pynector.registry import available_plugins, available_transports

    # The table shows every broken entry; the loader's warnings would repeat it.
    logging.getLogger("pynector").addHandler(logging.NullHandler())
    sections: list[Section] = [
        ("Transports", available_transports()),
        ("Plugins", available_plugins()),
    ]
    if sys.stdout.isatty():
        try:
            _print_rich(sections)
        except ImportError:
            pass
        else:
            return 0
    _print_plain(sections, sys.stdout)
    return 0


def _cells(record: TransportInfo | PluginInfo) -> tuple[str, str, str, str]:
    return (record.name, record.distribution or "-", record.version or "-", record.status)


def _print_plain(sections: Sequence[Section], out: TextIO) -> None:
    """Print each section as a title and columns aligned with spaces."""
    for index, (title, records) in enumerate(sections):
        if index:
            out.write("\n")
        out.write(f"{title}\n")
        if not records:
            out.write(f"(no {title.lower()} installed)\n")
            continue
        rows = [_COLUMNS, *(_cells(record) for record in records)]
        widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS) - 1)]
        for row in rows:
            padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            out.write("  ".join([*padded, row[-1]]) + "\n")


def _print_rich(sections: Sequence[Section]) -> None:
    """Print each section as a rich table (raises ImportError without rich)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    for title, records in sections:
        table = Table(title=title, title_justify="left", title_style="bold")
        for column in _COLUMNS:
            table.add_column(column.title(), overflow="fold")
        for record in records:
            name, distribution, version, status = _cells(record)
            style = "green" if status == "ok" else "red"
            table.add_row(Text(name), Text(distribution), Text(version), Text(status, style=style))
        if not records:
            table.caption = f"no {title.lower()} installed"
        console.print(table)


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


COMMANDS: list[Callable[[Subcommands], None]] = [
    add_transports_parser,
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
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
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
