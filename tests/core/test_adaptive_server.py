"""Adaptive concurrency against a server with a hidden capacity, judged by the server."""

from __future__ import annotations

import statistics

import pytest

from pynector import Pynector
from tests import _engines

from ._capacity import CapacityServer

backend_engine = _engines.backend_engine
anyio_backend = _engines.anyio_backend
engine = _engines.engine

pytestmark = pytest.mark.anyio


async def test_the_limit_converges_near_the_hidden_capacity_and_follows_its_change(
    engine: str,
) -> None:
    # 24 in flight at most, then 8 after 1200 successes; a batch sized to end well after.
    with CapacityServer(capacity=24, then=8, change_after=1200, base=0.02) as server:
        async with Pynector(transport_type="http", base_url=server.url, engine=engine) as client:
            assert client.concurrency_limit == 100  # not adaptive until asked
            limits: list[tuple[int, int]] = []
            async with client.batch(
                [({"path": "/"}, {}) for _ in range(1700)],
                max_concurrency="auto",
                max_retries=10,
                retry_delay=0.01,
            ) as results:
                failed = 0
                async for result in results:
                    failed += not result.ok
                    limits.append((server.phase, client.concurrency_limit))
    assert failed == 0
    assert server.phase == 1  # the capacity did change during the batch
    for phase, capacity in ((0, 24), (1, 8)):
        seen = server.in_phase(phase)
        # After the climb (phase 0) or the descent (phase 1): what the server had in flight.
        settled = seen[len(seen) // 3 :]
        assert capacity * 0.6 <= statistics.mean(settled) <= capacity + 1
        # Refusals are a small share of what the server saw (generous: the climb and
        # the descent are in it).
        assert server.refused[phase] <= 0.08 * len(seen)
        # The client's own limit ends near the capacity of each phase.
        last = [limit for seen_phase, limit in limits if seen_phase == phase][-100:]
        assert capacity * 0.6 <= statistics.median(last) <= capacity * 1.3
