"""A small soak: thousands of requests with random faults and cancellations.

The same soak as ``make soak`` (``benchmarks/soak.py``), smaller: a seeded mix
of faults from the socket-level fault server (in its own process), of
``request`` / ``request_with_retry`` / ``stream`` / ``batch_request`` calls and
of cancellations. Every request must end with an outcome the fault matrix of
``docs/reliability.md`` allows, and the client must leave no task, file
descriptor or socket behind, nor grow in memory after warm-up.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from ._servers import FaultServerProcess
from ._soak import EXPECTED, KINDS, Spec, Unit, live_objects, open_fds, run_soak, traced

REQUESTS = 3_000
SEED = 2024


@pytest.fixture
def fault_server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as server:
        yield server


@pytest.mark.anyio
async def test_soak_accounts_for_every_request_and_leaks_nothing(
    fault_server: FaultServerProcess, anyio_backend: str
) -> None:
    with traced() as spans:
        report = await run_soak(
            fault_server,
            requests=REQUESTS,
            seed=SEED,
            concurrency=32,
            time_limit=40,
            backend=anyio_backend,
            spans=spans,
        )
    assert report.ok, report.format()
    assert spans.ended == spans.started > REQUESTS
    assert sum(report.outcomes.values()) == REQUESTS
    assert report.server["requests"] >= report.outcomes["ok"]
    # Every fault was met and got the answer the matrix gives it at least once.
    for kind, _ in KINDS:
        assert report.by_kind[kind][EXPECTED[kind]] > 0, (kind, report.by_kind.get(kind))
    assert report.outcomes["cancelled"] > 0
    assert report.tasks_after == report.tasks_before
    assert not report.fds_after - report.fds_before


def test_the_matrix_allows_only_the_fault_s_own_outcome_unless_something_cancels() -> None:
    spec = Spec(0, "reset", {"path": "/reset"}, {}, replayable=True)
    flaky = Spec(1, "flaky", {"path": "/flaky/1"}, {}, replayable=True)
    post = Spec(2, "flaky", {"path": "/flaky/2", "method": "POST"}, {}, replayable=False)
    assert Unit("request", (spec,)).allowed(spec) == {"ConnectionError"}
    assert Unit("stream-early", (spec,)).allowed(spec) == {"ConnectionError", "ok"}
    assert Unit("request", (spec,), cancel_after=0.01).allowed(spec) == {
        "ConnectionError",
        "cancelled",
    }
    assert Unit("request", (spec,), timeout=0.01).allowed(spec) == {
        "ConnectionError",
        "TimeoutError",
    }
    assert Unit("retry", (flaky,)).allowed(flaky) == {"ok"}
    assert Unit("retry", (post,)).allowed(post) == {"ServerError"}
    assert Unit("request", (flaky,)).allowed(flaky) == {"ServerError"}


def test_the_leak_probes_see_a_socket_and_objects_left_behind() -> None:
    before_fds, before_objects = open_fds(), live_objects()
    with socket.socket() as leaked:
        kept: list[list[object]] = [[] for _ in range(5_000)]
        assert len(open_fds() - before_fds) == 1
        assert live_objects() - before_objects >= 5_000
    assert len(kept) == 5_000
    assert leaked.fileno() == -1
    assert not open_fds() - before_fds
