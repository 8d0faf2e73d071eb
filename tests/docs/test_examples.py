"""The scripts in examples/ run as documented and print what they promise.

Each runs as ``python examples/<name>.py`` in a subprocess, against the
embedded demo server it starts itself.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from ._snippets import ROOT

EXAMPLES = ROOT / "examples"

EXPECTED = {
    "request.py": [
        "GET /users -> 200",
        "  user 3: user 3",
        "GET /slow -> TimeoutError after 0.5 s",
    ],
    "retries.py": [
        "  attempt 1 failed (ServerError): waiting",
        "  attempt 2 failed (RateLimitError): waiting 1.00 s (retry-after)",
        "{'recovered_after_attempts': 3}",
        "  -> NotFoundError 404, retryable=False",
    ],
    "batch.py": [
        "200 requests in",
        "failed: 0",
        "results in input order: True",
        "most in flight at once: 10 (max_concurrency=10)",
    ],
    "custom_transport.py": [
        "GET /users/1 -> {'id': 1, 'name': 'user 1'}",
        "batch of 10, replies in order: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
        "GET /slow -> TimeoutError after 0.3 s",
        "GET /users/2 -> {'id': 2, 'name': 'user 2'}",
        "GET /flaky/raw with retries -> {'recovered_after_attempts': 3}",
        "connections opened: 4",
    ],
    "telemetry.py": [
        "pynector.retry [INTERNAL] pynector.retry.attempts=3",
        "  GET [CLIENT] http.request.method=GET http.response.status_code=503 pynector.attempt=1",
        "pynector.batch [INTERNAL] pynector.batch.succeeded=3",
        "GET http://127.0.0.1:",
        "retrying in 1.000 s (retry-after)",
    ],
    "cli_batch.py": [
        "51 result lines: 50 ok, 1 failed, 2 retried",
        "failed: missing -> NotFoundError 404",
        "  already done       51",
        "51 result lines, no duplicates",
    ],
}
TRIO = ["request.py", "batch.py", "custom_transport.py"]  # the cheap ones, also on trio


def _run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_example_script_is_tested() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_and_prints_what_it_promises(script: str) -> None:
    output = _run(script)
    for expected in EXPECTED[script]:
        assert expected in output, f"{script}: {expected!r} not in:\n{output}"


@pytest.mark.parametrize("script", TRIO)
def test_example_runs_on_trio(script: str) -> None:
    output = _run(script, "--backend", "trio")
    for expected in EXPECTED[script]:
        assert expected in output
