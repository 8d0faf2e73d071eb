"""Hedged requests over HTTP, judged by a server whose tail is scripted.

The tail server holds chosen arrivals of a key (``slow=1,3``) until the client
hangs up, or for ``hold`` seconds before answering: a slow tail. It counts
every arrival, when it came and every hang-up, so the tests see from the
server's side that a second copy arrives after ``hedge_after``, that the slow
copy's connection is closed by the client, that calls which may not be sent
twice never are, and that the retry budget and the client's limits bound the
hedges. Every test runs on each event loop and HTTP engine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector.errors import ServerError

from ._control import MAX_HOLD, ControlServer, KeyStats, _Handler

pytestmark = pytest.mark.anyio

HEDGE = 0.2  # hedge_after in these tests, seconds
SLACK = 0.05  # the client starts a copy before the server sees it; clocks differ this much


def _arrivals(text: str | None) -> set[int]:
    return {int(part) for part in (text or "").split(",") if part}


class _TailHandler(_Handler):
    def _route(
        self, path: str, query: dict[str, str], body: bytes, stats: KeyStats, attempt: int
    ) -> None:
        if path != "/tail":
            super()._route(path, query, body, stats, attempt)
            return
        if attempt in _arrivals(query.get("fail")):
            self._reply(500, {"attempt": attempt})
        elif attempt in _arrivals(query.get("slow", "1")):
            if self._client_gone(float(query.get("hold", MAX_HOLD))):
                self.close_connection = True
                with self.server.cond:
                    stats.disconnects += 1
                    self.server.cond.notify_all()
                return
            self._reply(int(query.get("status", "200")), {"attempt": attempt})
        else:
            self._reply(200, {"attempt": attempt})


class TailServer(ControlServer):
    """The control server with a ``/tail`` route (query: ``key``, ``slow``, ``hold``, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = _TailHandler


@pytest.fixture(scope="module")
def tail() -> Iterator[TailServer]:
    server = TailServer()
    server.start()
    yield server
    server.stop()


def _client(server: TailServer, engine: str, **config: Any) -> Pynector[Any, Any]:
    return Pynector(
        transport_type="http",
        base_url=server.url,
        engine=engine,
        config={"hedge_after": HEDGE, **config},
    )


async def _until(server: TailServer, predicate: Any) -> bool:
    """Wait in a thread (the loop keeps running, so the client can close its sockets)."""
    return await anyio.to_thread.run_sync(server.wait_for, predicate)


async def test_a_slow_call_gets_a_second_copy_after_hedge_after_and_the_slow_copy_is_cancelled(
    tail: TailServer, engine: str, key: str
) -> None:
    keys = [f"{key}-{index}" for index in range(3)]
    async with _client(tail, engine, max_connections=2) as client:
        fast = await client.request(
            {"path": "/tail", "params": {"key": f"{key}-fast", "slow": "0"}}
        )
        assert fast.json()["attempt"] == 1
        for each in keys:
            started = time.monotonic()
            with anyio.fail_after(5):
                response = await client.request({"path": "/tail", "params": {"key": each}})
            took = time.monotonic() - started
            assert response.json()["attempt"] == 2  # the second copy answered
            assert HEDGE - SLACK <= took < HEDGE + 2.0
            # The slow copy's connection was closed by the client, not left waiting.
            assert await _until(tail, lambda each=each: tail.key(each).disconnects == 1)
        # Both slots came back every time (max_connections=2: else no copy could start).
        after = await client.request({"path": "/echo", "params": {"key": f"{key}-after"}})
        assert after.status_code == 200
    for each in keys:
        stats = tail.key(each)
        assert stats.attempts == 2
        assert stats.times[1] - stats.times[0] >= HEDGE - SLACK
    assert tail.key(f"{key}-fast").attempts == 1  # answered in time: never hedged


@pytest.mark.parametrize(
    ("method", "headers", "options", "copies"),
    [
        ("POST", {}, {}, 1),
        ("POST", {"Idempotency-Key": "order-7"}, {}, 2),
        ("GET", {}, {"idempotent": False}, 1),
        ("POST", {}, {"idempotent": True}, 2),
    ],
    ids=["post", "post-idempotency-key", "get-idempotent-false", "post-idempotent-true"],
)
async def test_only_a_call_that_may_be_sent_twice_is_hedged(
    tail: TailServer,
    engine: str,
    key: str,
    method: str,
    headers: dict[str, str],
    options: dict[str, Any],
    copies: int,
) -> None:
    hold = HEDGE * 2.5
    async with _client(tail, engine) as client:
        with anyio.fail_after(5):
            response = await client.request(
                {
                    "path": "/tail",
                    "method": method,
                    "headers": headers,
                    "json": {"order": 7},
                    "params": {"key": key, "hold": hold},
                },
                **options,
            )
    assert tail.key(key).attempts == copies
    assert response.json()["attempt"] == copies  # not hedged: the slow copy's own answer


async def test_a_spent_retry_budget_stops_hedging(tail: TailServer, engine: str, key: str) -> None:
    hold = HEDGE * 2.5
    # One hedge in the window (0.1 a second for 10 s), none earned by first attempts.
    spare = {"ratio": 0.0, "min_per_second": 0.1, "window": 10}
    async with _client(tail, engine, retry_budget=spare) as client:
        budget = client._retry_budget
        assert budget is not None
        with anyio.fail_after(5):
            first = await client.request({"path": "/tail", "params": {"key": f"{key}-a"}})
            second = await client.request(
                {"path": "/tail", "params": {"key": f"{key}-b", "hold": hold}}
            )
    assert first.json()["attempt"] == 2
    assert tail.key(f"{key}-a").attempts == 2
    assert second.json()["attempt"] == 1  # waited for the slow copy
    assert tail.key(f"{key}-b").attempts == 1
    assert budget.available == 0


async def test_a_copy_that_fails_waits_for_the_other(
    tail: TailServer, engine: str, key: str
) -> None:
    hold = HEDGE * 2.5
    async with _client(tail, engine) as client:
        with anyio.fail_after(5):
            # The second copy fails at once (500); the slow first one then succeeds.
            response = await client.request(
                {"path": "/tail", "params": {"key": key, "hold": hold, "fail": "2"}}
            )
            # Both fail: the first copy's error (503) is raised, after both have ended.
            with pytest.raises(ServerError) as caught:
                await client.request(
                    {
                        "path": "/tail",
                        "params": {"key": f"{key}-b", "hold": hold, "fail": "2", "status": 503},
                    }
                )
    assert response.json()["attempt"] == 1
    assert tail.key(key).attempts == 2
    assert caught.value.status_code == 503
    assert tail.key(f"{key}-b").attempts == 2


async def test_a_second_copy_waits_for_a_connection_slot_and_the_rate_limit(
    tail: TailServer, engine: str, key: str
) -> None:
    hold = HEDGE * 2.5
    async with _client(tail, engine, max_connections=1) as client:
        with anyio.fail_after(5):
            response = await client.request(
                {"path": "/tail", "params": {"key": f"{key}-slots", "hold": hold}}
            )
    # The one slot was the first copy's until it answered: no second copy was sent.
    assert response.json()["attempt"] == 1
    assert tail.key(f"{key}-slots").attempts == 1

    async with _client(tail, engine, rate_limit="2/s") as client:
        with anyio.fail_after(5):
            response = await client.request({"path": "/tail", "params": {"key": f"{key}-rate"}})
    stats = tail.key(f"{key}-rate")
    assert response.json()["attempt"] == 2
    # Starts 0.5 s apart under 2/s: the second copy waited past hedge_after for its turn.
    assert stats.times[1] - stats.times[0] >= 0.5 - SLACK


async def test_a_percentile_hedges_only_once_the_client_knows_its_latencies(
    tail: TailServer, engine: str, key: str
) -> None:
    hold = 0.3
    async with _client(tail, engine, hedge_after="p95") as client:
        assert client._hedge is not None
        needed = client._hedge.min_samples
        with anyio.fail_after(10):
            # Cold: no latencies yet, so the slow call is waited for.
            cold = await client.request({"path": "/tail", "params": {"key": key, "hold": hold}})
            for index in range(needed):
                await client.request(
                    {"path": "/tail", "params": {"key": f"{key}-{index}", "slow": "0"}}
                )
            warm = await client.request({"path": "/tail", "params": {"key": f"{key}-warm"}})
    assert cold.json()["attempt"] == 1
    assert tail.key(key).attempts == 1
    assert warm.json()["attempt"] == 2
    assert tail.key(f"{key}-warm").attempts == 2


async def test_a_stream_is_never_hedged(tail: TailServer, engine: str, key: str) -> None:
    hold = HEDGE * 2.5
    async with _client(tail, engine) as client:
        with anyio.fail_after(5):
            async with client.stream(
                {"path": "/tail", "params": {"key": key, "hold": hold}}
            ) as stream:
                body = b"".join([chunk async for chunk in stream])
    assert b'"attempt": 1' in body
    assert tail.key(key).attempts == 1
