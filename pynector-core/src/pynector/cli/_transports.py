"""``pynector transports``: the installed transports and plugins, and whether they load."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pynector.registry import PluginInfo, TransportInfo

    from ._command import Subcommands

    Section = tuple[str, Sequence[TransportInfo | PluginInfo]]

__all__ = ["add_transports_parser"]

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
