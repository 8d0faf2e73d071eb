"""Progress, messages and the summary of ``pynector batch``.

A rich progress bar on stderr when it is a terminal (messages print above it),
plain ``progress:`` lines every tenth of the input otherwise; the summary goes to
stdout, as a rich table on a terminal. Everything shown passes through
:class:`~pynector._cli_common.Secrets`.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from ._cli_common import Secrets

__all__ = ["Latencies", "Reporter", "RichReporter", "make_reporter", "print_summary"]


class Reporter:
    """Progress and messages on stderr: plain lines, or nothing but messages."""

    def __init__(self, secrets: Secrets, plain: bool) -> None:
        self.secrets = secrets
        self._plain = plain
        self._total: int | None = None
        self._done = 0
        self._step = 1
        self._next = math.inf  # the count of lines at which to print the next progress line
        self._start = time.perf_counter()
        self.ok = 0
        self.failed = 0

    def start(self, total: int | None) -> None:
        self._total = total
        self._start = time.perf_counter()
        if self._plain and total:
            self._step = max(total // 10, 1)
            self._next = self._step

    def advance(self, ok: bool | None) -> None:
        """One line handled: ``True``/``False`` for a result, ``None`` when skipped."""
        self._done += 1
        if ok is not None:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
        if self._done >= self._next:
            self._next += self._step
            self._print_progress()

    def _print_progress(self) -> None:
        total = self._total or 0
        rate = (self.ok + self.failed) / max(time.perf_counter() - self._start, 1e-9)
        skipped = self._done - self.ok - self.failed
        self._write(
            f"progress: {self._done}/{total} lines ({self._done * 100 // max(total, 1)}%): "
            f"{self.ok} succeeded, {self.failed} failed, {skipped} skipped; {rate:.0f} requests/s"
        )

    def note(self, text: str) -> None:
        self._write(text)

    def _write(self, text: str) -> None:
        sys.stderr.write(self.secrets.scrub(text) + "\n")
        sys.stderr.flush()

    def stop(self) -> None:
        pass


class RichReporter(Reporter):
    """A rich progress bar on stderr; messages are printed above it."""

    def __init__(self, secrets: Secrets) -> None:
        super().__init__(secrets, plain=False)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task: Any = None

    def start(self, total: int | None) -> None:
        super().start(total)
        self._bar.start()
        self._task = self._bar.add_task("batch", total=total, ok=0, failed=0)

    def advance(self, ok: bool | None) -> None:
        super().advance(ok)
        self._bar.update(self._task, advance=1, ok=self.ok, failed=self.failed)

    def _write(self, text: str) -> None:
        self._bar.console.print(self.secrets.scrub(text), markup=False, highlight=False)

    def stop(self) -> None:
        self._bar.stop()


def make_reporter(mode: str, secrets: Secrets) -> Reporter:
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        try:
            return RichReporter(secrets)
        except ImportError:
            pass
    return Reporter(secrets, plain=mode != "none")


class Latencies:
    """A fixed histogram of latencies (2 % wide buckets from 10 us): flat memory."""

    __slots__ = ("_counts", "count")

    _LOW = 1e-5
    _STEP = math.log(1.02)

    def __init__(self) -> None:
        self._counts = [0] * 1100
        self.count = 0

    def add(self, seconds: float) -> None:
        index = int(math.log(max(seconds, self._LOW) / self._LOW) / self._STEP)
        self._counts[min(index, len(self._counts) - 1)] += 1
        self.count += 1

    def quantile(self, q: float) -> float | None:
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for index, count in enumerate(self._counts):
            seen += count
            if seen >= rank and count:
                return self._LOW * math.exp((index + 0.5) * self._STEP)
        return None  # pragma: no cover - the loop always reaches the rank


def print_summary(rows: list[tuple[str, str]], title: str, secrets: Secrets) -> None:
    rows = [(name, secrets.scrub(value)) for name, value in rows]
    if sys.stdout.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
            from rich.text import Text
        except ImportError:
            pass
        else:
            table = Table(title=title, title_justify="left")
            table.add_column("measure")
            table.add_column("value", justify="right")
            for name, value in rows:
                table.add_row(Text(name), Text(value))
            Console().print(table)
            return
    width = max(len(name) for name, _ in rows) + 2
    lines = [title, *(f"  {name:<{width}}{value}" for name, value in rows)]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
