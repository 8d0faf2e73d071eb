"""Progress, messages and the summary of ``pynector batch``.

A rich progress bar on stderr when it is a terminal (messages print above it),
plain ``progress:`` lines every tenth of the input otherwise; the summary goes to
stdout, as a rich table on a terminal. Everything shown passes through
:class:`~pynector.cli._secrets.Secrets`.

Every line of the input is counted once, as exactly one of: succeeded, failed
(a result written now), already done (its id was in OUT: a resumed run skips
it) or skipped (a bad line or a duplicate id), so the four add up to the lines
handled. Requests per second, the time left, retries and p50/p95 count only the
requests sent by this run.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from ._histogram import Latencies
from ._secrets import Secrets

__all__ = [
    "Latencies",
    "Reporter",
    "RichReporter",
    "format_duration",
    "make_reporter",
    "print_summary",
]


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (``-`` when unknown), as rich shows elapsed time."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    whole = max(int(seconds + 0.5), 0)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


class Reporter:
    """Counts what a batch did, and shows it on stderr: plain lines, or only messages.

    Args:
        secrets: Scrubbed from everything written.
        plain: Whether to print ``progress:`` lines (``steps`` of them over the input).
        clock: Seconds, for the rate and the times (tests pass a fake one).
        out: Where lines go; default ``sys.stderr``.
        steps: How many ``progress:`` lines a run prints.
    """

    def __init__(
        self,
        secrets: Secrets,
        plain: bool,
        clock: Callable[[], float] = time.perf_counter,
        out: TextIO | None = None,
        steps: int = 10,
    ) -> None:
        self.secrets = secrets
        self._out = out
        self._steps = steps
        self.latencies = Latencies()
        self._plain = plain
        self._clock = clock
        self._total: int | None = None
        self._expected_done = 0
        self._step = 1
        self._next = math.inf  # the count of lines at which to print the next progress line
        self._printed = 0  # the count of lines the last progress line showed
        self._start = clock()
        self.ok = 0
        self.failed = 0
        self.already_done = 0
        self.skipped = 0
        self.retries = 0
        #: The client's current in-flight limit, shown when set (``--concurrency auto``).
        self.concurrency: Callable[[], int] | None = None
        #: Where the provider's batches stand, shown when set (``--via batch-api``).
        self.remote: Callable[[], str] | None = None

    @property
    def handled(self) -> int:
        """Lines handled so far: succeeded + failed + already done + skipped."""
        return self.ok + self.failed + self.already_done + self.skipped

    def start(self, total: int | None, already_done: int = 0) -> None:
        """The run starts: ``total`` lines (if known), ``already_done`` ids in OUT."""
        self._total = total
        self._expected_done = already_done
        self._start = self._clock()
        if self._plain and total:
            self._step = max(total // self._steps, 1)
            self._next = self._step

    def advance(self, ok: bool | None, attempts: int = 1) -> None:
        """One line handled: its result (``ok``) after ``attempts``, or ``None`` if skipped."""
        if ok is None:
            self.skipped += 1
        else:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
            self.retries += max(attempts - 1, 0)
        self._handled()

    def resume(self) -> None:
        """One line whose id already has a result in OUT (from an earlier run)."""
        self.already_done += 1
        self._handled()

    def _handled(self) -> None:
        if self.handled >= self._next:
            self._next += self._step
            self._printed = self.handled
            self._write(self.progress_line())

    def elapsed(self) -> float:
        return self._clock() - self._start

    def rate(self) -> float:
        """Requests sent per second by this run (resumed lines are not sent)."""
        return (self.ok + self.failed) / max(self.elapsed(), 1e-9)

    def time_left(self) -> float | None:
        """Seconds until the last request is done, at the current rate; ``None``: unknown."""
        if self._total is None:
            return None
        # The lines not handled yet, less those OUT says are done (skipped at once).
        left = self._total - self.handled - max(self._expected_done - self.already_done, 0)
        if left <= 0:
            return 0.0
        sent = self.ok + self.failed
        return left / self.rate() if sent else None

    def counts_text(self) -> str:
        """``N succeeded, N failed, N already done, N skipped``: adds up to the lines handled."""
        return (
            f"{self.ok} succeeded, {self.failed} failed, {self.already_done} already done, "
            f"{self.skipped} skipped"
        )

    def retries_text(self) -> str:
        """``N retries``: attempts after the first, of the requests that finished."""
        return f"{self.retries} {'retry' if self.retries == 1 else 'retries'}"

    def rate_text(self) -> str:
        return f"{self.rate():.0f} requests/s"

    def concurrency_text(self) -> str:
        """``; concurrency N (auto)`` with an adaptive limit, ``; remote ...`` with
        the providers' batches, else nothing."""
        limit = self.concurrency
        text = "" if limit is None else f"; concurrency {limit()} (auto)"
        remote = self.remote
        return text if remote is None else f"{text}; {remote()}"

    def latency_text(self) -> str:
        """``p50 X ms, p95 Y ms`` of the requests that finished (``elapsed``)."""
        latencies = self.latencies
        return f"p50 {_ms(latencies.quantile(0.5))}, p95 {_ms(latencies.quantile(0.95))}"

    def times_text(self) -> str:
        """``elapsed H:MM:SS, ETA H:MM:SS`` (the time left at the current rate)."""
        return f"elapsed {format_duration(self.elapsed())}, ETA {format_duration(self.time_left())}"

    def progress_line(self) -> str:
        """The plain ``progress:`` line."""
        total = self._total or 0
        percent = self.handled * 100 // max(total, 1)
        return (
            f"progress: {self.handled}/{total} lines ({percent}%): {self.counts_text()}; "
            f"{self.retries_text()}; {self.rate_text()}{self.concurrency_text()}; "
            f"{self.latency_text()}; {self.times_text()}"
        )

    def note(self, text: str) -> None:
        self._write(text)

    def _write(self, text: str) -> None:
        out = self._out or sys.stderr
        out.write(self.secrets.scrub(text) + "\n")
        out.flush()

    def stop(self) -> None:
        """The run ended: a last progress line unless the last one said it all."""
        if self._plain and self._total and self._printed != self.handled:
            self._printed = self.handled
            self._write(self.progress_line())


class RichReporter(Reporter):
    """A rich progress bar on stderr, its counts on a second line; messages print above.

    Args:
        secrets: Scrubbed from everything shown.
        console: Where to draw (default: a console on stderr).
        clock: Seconds, for the rate and the times.
    """

    def __init__(
        self,
        secrets: Secrets,
        console: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(secrets, plain=False, clock=clock)
        from rich.console import Console, RenderableType
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
        )
        from rich.text import Text

        reporter = self

        class Status(ProgressColumn):
            """Requests per second and the labelled times, computed at each refresh."""

            def render(self, task: Task) -> Text:
                return Text(f"{reporter.rate_text()}  {reporter.times_text()}", style="cyan")

        class Bar(Progress):
            """The bar's line, then a line of counts that add up to the lines handled."""

            def get_renderables(self) -> Iterable[RenderableType]:
                yield self.make_tasks_table(self.tasks)
                text = (
                    f"{reporter.counts_text()}; {reporter.retries_text()}"
                    f"{reporter.concurrency_text()}; {reporter.latency_text()}"
                )
                yield Text(reporter.secrets.scrub(text), no_wrap=True, overflow="ellipsis")

        self._bar = Bar(
            TextColumn("[bold]batch"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("lines"),
            Status(),
            console=console if console is not None else Console(stderr=True),
        )
        self._task: Any = None

    def start(self, total: int | None, already_done: int = 0) -> None:
        super().start(total, already_done)
        self._bar.start()
        self._task = self._bar.add_task("batch", total=total)

    def _handled(self) -> None:
        self._bar.update(self._task, completed=self.handled)

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
