"""The shared circuit breaker: one breaker per key for every client of the store, in Redis."""

from __future__ import annotations

import uuid

import pytest

from pynector import Pynector
from pynector.concurrency import BreakerSettings
from pynector.errors import CircuitOpenError, ServerError
from pynector_redis import RedisBreaker, RedisStore
from tests._redis import RedisServer, RedisServerFactory
from tests.core._outage import SETTINGS, OutageServer, calls

pytestmark = pytest.mark.anyio


def key() -> str:
    return f"test-{uuid.uuid4().hex}"


async def test_one_client_opens_the_breaker_for_every_client_of_the_key(
    redis_server: RedisServer,
) -> None:
    # Each test's server has a port of its own: the origin, the breaker's key, is the test's.
    with OutageServer("503") as server:
        config = {"store": redis_server.url, "circuit_breaker": SETTINGS}
        async with (
            Pynector(transport_type="http", base_url=server.url, config=config) as first,
            Pynector(transport_type="http", base_url=server.url, config=config) as second,
        ):
            assert all(isinstance(o, ServerError) for o in await calls(first, 4))
            refused = await calls(second, 20)
            assert server.counts["503"] == 4  # the second client sent nothing
            assert all(isinstance(o, CircuitOpenError) for o in refused)
            assert 50 < (refused[0].retry_after or 0) <= 60  # type: ignore[union-attr]
            assert all(isinstance(o, CircuitOpenError) for o in await calls(first, 5))
    assert server.counts["503"] == 4


async def test_half_open_admits_one_probe_for_the_whole_fleet(redis_server: RedisServer) -> None:
    name = key()
    settings = BreakerSettings(minimum_calls=2, cooldown=0, probes=1)
    # Two stores: two processes as far as Redis knows (no state shared in Python).
    one, two = RedisStore(redis_server.url), RedisStore(redis_server.url)
    try:
        a, b = one.breaker(name, settings), two.breaker(name, settings)
        assert isinstance(a, RedisBreaker)
        assert one.breaker(name, settings) is a
        for _ in range(2):
            (await a.acquire()).record(True)
        await one.flush()  # the failures reach Redis: open, half-open at once (cooldown 0)
        probe = await b.acquire()
        with pytest.raises(CircuitOpenError, match="probe"):
            await a.acquire()  # the fleet's one probe is out
        probe.record(False)
        await two.flush()
        (await b.acquire()).record(False)  # closed for everyone
    finally:
        await one.aclose()
        await two.aclose()
    three = RedisStore(redis_server.url)
    try:
        (await three.breaker(name, settings).acquire()).record(False)  # closed in Redis too
    finally:
        await three.aclose()


async def test_a_failed_probe_opens_it_for_another_cooldown(redis_server: RedisServer) -> None:
    name = key()
    one, two = RedisStore(redis_server.url), RedisStore(redis_server.url)
    try:
        opener = one.breaker(name, BreakerSettings(minimum_calls=1, cooldown=0))
        (await opener.acquire()).record(True)
        await one.flush()  # open, and half-open at once
        # The cooldown of the round trip that records the failed probe applies.
        prober = two.breaker(name, BreakerSettings(minimum_calls=1, cooldown=60))
        probe = await prober.acquire()
        probe.record(True)
        await two.flush()
        # A third process (the opener trusts its last look, half-open, for a moment).
        three = RedisStore(redis_server.url)
        try:
            with pytest.raises(CircuitOpenError) as caught:
                await three.breaker(name, BreakerSettings()).acquire()
        finally:
            await three.aclose()
        assert 50 < (caught.value.retry_after or 0) <= 60
    finally:
        await one.aclose()
        await two.aclose()


async def test_with_the_store_down_and_store_failure_open_a_local_breaker_stands_in(
    redis_server_factory: RedisServerFactory,
) -> None:
    redis = redis_server_factory()
    redis.start()
    url = redis.url
    redis.stop()
    with OutageServer("503") as server:
        config = {
            "store": url + "?timeout=0.5",
            "store_failure": "open",
            "circuit_breaker": SETTINGS,
        }
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            outcomes = await calls(client, 10)
    assert server.counts["503"] == 4
    assert all(isinstance(o, CircuitOpenError) for o in outcomes[4:])


async def test_failures_in_a_row_across_processes_open_it(redis_server: RedisServer) -> None:
    name = key()
    settings = BreakerSettings(minimum_calls=4, cooldown=60)
    one, two = RedisStore(redis_server.url), RedisStore(redis_server.url)
    try:
        a, b = one.breaker(name, settings), two.breaker(name, settings)
        for _ in range(50):
            (await a.acquire()).record(False)
        await one.flush()
        (await a.acquire()).record(True)
        (await a.acquire()).record(True)
        await one.flush()
        (await b.acquire()).record(True)
        (await b.acquire()).record(True)
        await two.flush()  # 4 in a row, across two processes, 50 successes in the window
        three = RedisStore(redis_server.url)
        try:
            with pytest.raises(CircuitOpenError):
                await three.breaker(name, settings).acquire()
        finally:
            await three.aclose()
    finally:
        await one.aclose()
        await two.aclose()
