"""Two runs of the command in one process, at once: each client counts its own attempts.

``pynector.cli.main`` is called in two threads of the test process. Each run's
client has its plugins to itself (``Pynector(plugins=[...])``, or none at all
for a batch, whose results carry their attempts), so nothing is registered for
the whole process and neither run sees the other's retries. The server holds
the first request of each run until both have arrived (``?gate=2``): the two
runs are known to overlap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pynector.cli import main

from .conftest import CountingServer, read_results, write_lines


def _side_by_side(*runs: Callable[[], int]) -> list[int]:
    """Run each function in a thread of its own, all at once; their exit statuses."""
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = [pool.submit(run) for run in runs]
        return [future.result(timeout=60) for future in futures]


@pytest.fixture(autouse=True)
def _default_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYNECTOR_TIMEOUT", raising=False)


def test_two_requests_at_once_each_report_their_own_attempts(
    server: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    def request(key: str, fail: int) -> Callable[[], int]:
        url = f"{server.url}/flaky/{key}?fail={fail}&gate=2"
        return lambda: main(
            ["request", url, "--retries", "5", "--retry-delay", "0", "--format", "json"]
        )

    statuses = _side_by_side(request("a", 1), request("b", 3))

    assert statuses == [0, 0]
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    attempts = {record["response"]["body"]["path"]: record["attempts"] for record in records}
    assert attempts == {"/flaky/a": 2, "/flaky/b": 4}
    assert (server.hits["/flaky/a"], server.hits["/flaky/b"]) == (2, 4)


def test_two_batches_at_once_each_record_their_own_attempts(
    tmp_path: Path, server: CountingServer
) -> None:
    def batch(key: str, fail: int) -> tuple[Path, Callable[[], int]]:
        lines = [
            {"id": f"{key}{n}", "path": f"/flaky/{key}{n}", "params": {"fail": fail, "gate": 2}}
            for n in range(3)
        ]
        source = write_lines(tmp_path / f"{key}.jsonl", lines)
        out = tmp_path / f"{key}-out.jsonl"
        argv = ["batch", str(source), "-o", str(out), "--base-url", server.url]
        argv += ["--retries", "4", "--retry-delay", "0", "--progress", "none"]
        return out, lambda: main(argv)

    (out_a, run_a), (out_b, run_b) = batch("a", 1), batch("b", 2)
    statuses = _side_by_side(run_a, run_b)

    assert statuses == [0, 0]
    assert {r["id"]: r["attempts"] for r in read_results(out_a)} == {"a0": 2, "a1": 2, "a2": 2}
    assert {r["id"]: r["attempts"] for r in read_results(out_b)} == {"b0": 3, "b1": 3, "b2": 3}
