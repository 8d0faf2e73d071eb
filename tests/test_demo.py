"""``pynector demo`` (the README's ``make demo``) runs end to end with no network."""

from __future__ import annotations

import subprocess
import sys
import time


def test_demo_shows_request_timeout_retry_and_batch_and_exits_zero() -> None:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pynector", "demo", "--requests", "100"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "GET /users/1 -> 200" in out
    assert "with timeout=0.5 -> TimeoutError" in out
    assert "429 RateLimitError; waiting 1.00 s (retry-after)" in out
    assert "the server counted 3 requests" in out
    assert "succeeded                    100" in out
    assert elapsed < 30


def test_demo_rejects_a_bad_batch_size_with_a_clear_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pynector", "demo", "--requests", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--requests and --concurrency must be at least 1" in done.stderr
