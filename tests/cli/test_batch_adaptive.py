"""``pynector batch --concurrency auto``: the limit adapts, and the progress shows it."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from tests.core._capacity import CapacityServer

from .conftest import read_results, run_cli, write_lines


def test_concurrency_auto_keeps_near_the_hidden_capacity_and_shows_the_limit(
    tmp_path: Path,
) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"id": n, "path": f"/{n}"} for n in range(600)])
    out = tmp_path / "out.jsonl"
    with CapacityServer(capacity=12, then=12, change_after=10**9, base=0.02) as server:
        done = run_cli(
            *("batch", source, "-o", out, "--base-url", server.url),
            *("--concurrency", "auto", "--retries", "10", "--retry-delay", "0.01"),
            *("--progress", "plain"),
        )
    assert done.returncode == 0, done.stderr
    results = read_results(out)
    assert len(results) == 600
    assert all(result["ok"] for result in results)
    seen = server.in_phase(0)
    assert statistics.mean(seen[len(seen) // 3 :]) >= 12 * 0.6  # the capacity is used
    assert server.refused[0] <= 0.08 * len(seen)
    shown = [int(limit) for limit in re.findall(r"concurrency (\d+) \(auto\)", done.stderr)]
    assert len(shown) >= 5  # one per progress line
    assert 6 <= shown[-1] <= 13
    assert re.search(r"concurrency limit\s+\d+ \(auto\)", done.stdout)


def test_a_bad_concurrency_is_a_usage_error(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [{"path": "/"}])
    done = run_cli("batch", source, "-o", tmp_path / "out.jsonl", "--concurrency", "lots")
    assert done.returncode == 2
    assert "neither a whole number of at least 1 nor 'auto'" in done.stderr
