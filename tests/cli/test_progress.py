"""The batch progress: the latency histogram, the counts and the rendered lines."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from pynector.cli._histogram import Latencies
from pynector.cli._progress import Reporter, RichReporter, format_duration
from pynector.cli._secrets import Secrets

from .conftest import CountingServer, run_cli, write_lines

# sqrt(1.02) - 1: a sample is never farther than that from the middle of its bucket.
BUCKET_ERROR = 0.01


def _exact(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


DISTRIBUTIONS: dict[str, Callable[[random.Random], float]] = {
    "lognormal around 20 ms": lambda rng: rng.lognormvariate(math.log(0.02), 0.6),
    "uniform 1 ms to 1 s": lambda rng: rng.uniform(0.001, 1.0),
    "bimodal 2 ms and 300 ms": lambda rng: (
        rng.gauss(0.002, 0.0002) if rng.random() < 0.9 else rng.gauss(0.3, 0.03)
    ),
    "microseconds": lambda rng: rng.uniform(2e-6, 9e-6),
}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_quantiles_are_within_the_bucket_error_of_the_exact_ones(name: str) -> None:
    rng = random.Random(13)
    samples = [abs(DISTRIBUTIONS[name](rng)) for _ in range(20_000)]
    histogram = Latencies()
    for sample in samples:
        histogram.add(sample)
    for q in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        estimate = histogram.quantile(q)
        assert estimate is not None
        exact = _exact(samples, q)
        assert abs(estimate - exact) <= BUCKET_ERROR * exact * 1.0001, (q, estimate, exact)


def test_p50_and_p95_move_when_latency_moves_by_five_percent() -> None:
    rng = random.Random(7)
    base = [rng.lognormvariate(math.log(0.05), 0.3) for _ in range(5_000)]
    before, after = Latencies(), Latencies()
    for sample in base:
        before.add(sample)
        after.add(sample * 1.05)
    for q in (0.5, 0.95):
        old, new = before.quantile(q), after.quantile(q)
        assert old is not None
        assert new is not None
        assert 1.03 <= new / old <= 1.07, (q, old, new)


def test_the_extremes_are_exact_and_an_empty_histogram_has_no_quantile() -> None:
    histogram = Latencies()
    assert histogram.quantile(0.5) is None
    histogram.add(0.0123)
    assert histogram.quantile(0.5) == 0.0123  # one sample: bounded by itself
    histogram.add(0.0)  # below the first bucket
    histogram.add(1e9)  # above the last
    assert histogram.quantile(0.0) == 0.0
    assert histogram.quantile(1.0) == 1e9
    assert histogram.count == 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _resumed_run(reporter: Reporter, clock: FakeClock) -> None:
    """10 lines, 4 of them done by an earlier run: 3 succeed (one after 2 retries), 1 fails,
    1 bad line, 1 left; 4 requests in 2 s."""
    reporter.start(10, already_done=4)
    for _ in range(4):
        reporter.resume()
    for seconds, ok, attempts in ((0.010, True, 1), (0.020, True, 3), (0.030, False, 1)):
        reporter.latencies.add(seconds)
        reporter.advance(ok, attempts)
    reporter.advance(None)
    reporter.latencies.add(0.040)
    reporter.advance(True, 1)
    clock.now += 2.0


def test_the_progress_line_labels_counts_rate_retries_latency_and_times() -> None:
    clock = FakeClock()
    reporter = Reporter(Secrets(), plain=False, clock=clock)
    _resumed_run(reporter, clock)

    assert reporter.handled == 9 == reporter.ok + reporter.failed + reporter.already_done + 1
    assert reporter.progress_line() == (
        "progress: 9/10 lines (90%): 3 succeeded, 1 failed, 4 already done, 1 skipped; "
        "2 retries; 2 requests/s; p50 20.2 ms, p95 40.0 ms; elapsed 0:00:02, ETA 0:00:01"
    )


def test_the_time_left_counts_only_lines_still_to_send() -> None:
    clock = FakeClock()
    reporter = Reporter(Secrets(), plain=False, clock=clock)
    reporter.start(1000, already_done=500)
    for _ in range(100):
        reporter.resume()  # resumed lines come at once and say nothing about the rate
    assert reporter.time_left() is None  # nothing sent yet: unknown
    assert reporter.times_text() == "elapsed 0:00:00, ETA -"
    for _ in range(10):
        reporter.advance(True)
    clock.now += 5.0  # 2 requests/s
    # 890 lines left, of which 400 are known to be done: 490 to send at 2/s.
    assert reporter.time_left() == pytest.approx(245.0)
    assert reporter.times_text() == "elapsed 0:00:05, ETA 0:04:05"


def test_plain_lines_come_every_tenth_and_the_last_one_at_the_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reporter = Reporter(Secrets(), plain=True, clock=FakeClock())
    reporter.start(25)
    for _ in range(25):
        reporter.advance(True)
    reporter.stop()
    reporter.stop()  # the error path stops twice: still one last line
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" lines")[0] for line in lines] == [
        *(f"progress: {n}/25" for n in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24)),
        "progress: 25/25",
    ]


def test_the_rich_bar_renders_the_same_labelled_counts() -> None:
    clock = FakeClock()
    console = Console(record=True, width=100, file=io.StringIO())
    reporter = RichReporter(Secrets(["sekrit-token"]), console=console, clock=clock)
    _resumed_run(reporter, clock)
    reporter.note("a line with sekrit-token in it")
    reporter.stop()

    text = console.export_text()
    assert "a line with [redacted] in it" in text
    bar, counts = text.splitlines()[-2:]
    assert bar.startswith("batch ━")
    assert bar.endswith("9/10 lines 2 requests/s  elapsed 0:00:02, ETA 0:00:01")
    assert counts == (
        "3 succeeded, 1 failed, 4 already done, 1 skipped; 2 retries; p50 20.2 ms, p95 40.0 ms"
    )


def test_format_duration() -> None:
    assert [format_duration(s) for s in (None, math.inf, 0, 59.6, 3725)] == [
        "-",
        "-",
        "0:00:00",
        "0:01:00",
        "1:02:05",
    ]


def test_a_resumed_batch_counts_the_lines_done_before_apart_and_the_totals_add_up(
    tmp_path: Path, server: CountingServer
) -> None:
    source = tmp_path / "in.jsonl"
    out = tmp_path / "out.jsonl"
    write_lines(source, [{"id": n, "path": f"/ok/{n}"} for n in range(10)])
    assert run_cli("batch", source, "-o", out, "--base-url", server.url).returncode == 0
    write_lines(source, [*({"id": n, "path": f"/ok/{n}"} for n in range(20)), "not json"])

    done = run_cli("batch", source, "-o", out, "--base-url", server.url)

    assert done.returncode == 1  # the bad line
    progress = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    assert progress[-1].startswith(
        "progress: 21/21 lines (100%): 10 succeeded, 0 failed, 10 already done, 1 skipped; "
        "0 retries; "
    )
    assert server.total_hits == 20
