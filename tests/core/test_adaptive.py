"""The adaptive in-flight limit: its rules, its room, and how the client takes it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector._config import load_config
from pynector.concurrency import AdaptiveLimiter
from pynector.errors import (
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from pynector.testing import MockTransport

pytestmark = pytest.mark.anyio


class _Clock:
    """A clock the test moves by hand: round-trip times without waiting for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(max_limit: int = 100, **options: Any) -> tuple[AdaptiveLimiter, _Clock]:
    clock = _Clock()
    return AdaptiveLimiter(max_limit, clock=clock, **options), clock


def _fill(limiter: AdaptiveLimiter) -> None:
    """Take every room the limit has (without a wait: there is room for each)."""
    while limiter.in_flight < limiter.limit:
        limiter._in_flight += 1  # the no-wait branch of acquire(), without a loop


def _round(limiter: AdaptiveLimiter, clock: _Clock, rtt: float) -> None:
    """One round trip at the full limit: every call succeeds after ``rtt``.

    As in a batch, each call that ends is replaced at once by the next (so the
    limit stays in use); the replacements are the next round's calls.
    """
    _fill(limiter)
    started = clock.now
    clock.now += rtt
    calls = limiter.in_flight
    for _ in range(calls):
        limiter.release(started)
        limiter._in_flight += 1
    limiter._in_flight -= calls


def _refused(limiter: AdaptiveLimiter, clock: _Clock) -> None:
    """A call sent now and refused at once with a 429."""
    _fill(limiter)
    clock.now += 0.001
    limiter.release(clock.now, RateLimitError("busy", status_code=429))


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"max_limit": 0}, "max_limit"),
        ({"max_limit": True}, "max_limit"),
        ({"max_limit": 5, "min_limit": 6}, "min_limit"),
        ({"max_limit": 5, "initial": 9}, "initial"),
        ({"max_limit": 5, "backoff": 1.0}, "backoff"),
        ({"max_limit": 5, "backoff": 0.1}, "backoff"),
        ({"max_limit": 5, "tolerance": 1.0}, "tolerance"),
        ({"max_limit": 5, "tolerance": float("nan")}, "tolerance"),
    ],
)
def test_bad_bounds_and_factors_are_configuration_errors(
    options: dict[str, Any], word: str
) -> None:
    max_limit = options.pop("max_limit")
    with pytest.raises(ConfigurationError, match=word):
        AdaptiveLimiter(max_limit, **options)


def test_it_starts_low_and_doubles_each_round_trip_until_a_refusal() -> None:
    limiter, clock = _limiter()
    assert limiter.limit == 4
    seen = []
    for _ in range(4):
        _round(limiter, clock, 0.05)
        seen.append(limiter.limit)
    assert seen == [8, 16, 32, 64]
    _round(limiter, clock, 0.05)
    assert limiter.limit == 100  # never above max_limit


def test_a_burst_of_refusals_is_one_cut_and_their_room_is_not_handed_on() -> None:
    limiter, clock = _limiter(initial=40)
    _fill(limiter)
    sent = clock.now
    clock.now += 0.001
    # Five calls sent together are refused: one cut (x0.9), the others only give no room.
    limiter.release(sent, RateLimitError("busy", status_code=429))
    assert limiter.limit == 36
    assert limiter.cuts == 1
    for _ in range(4):
        limiter.release(sent, RateLimitError("busy", status_code=429))
    assert limiter.cuts == 1
    assert limiter.limit == 35  # the 35 calls still in flight, no room for a sixth
    # A call sent after the cut and refused too cuts again.
    clock.now += 0.001
    limiter.release(clock.now, ServerError("overloaded", status_code=529))
    assert limiter.cuts == 2
    assert limiter.limit == 31


def test_timeouts_and_overload_statuses_cut_client_errors_do_not() -> None:
    limiter, clock = _limiter(initial=20)
    _fill(limiter)
    clock.now += 1
    limiter.release(clock.now, BadRequestError("bad", status_code=400))
    limiter.release(clock.now, ServerError("bug", status_code=500))
    assert limiter.cuts == 0
    assert limiter.limit == 20
    limiter.release(clock.now, TimeoutError("slow", timeout=1.0))
    assert limiter.cuts == 1
    assert limiter.limit == 17  # x0.9 is 18, but only the 17 others are still in flight
    limiter.release(clock.now + 1, ServerError("unavailable", status_code=503))
    assert limiter.cuts == 2


def test_it_never_goes_below_min_limit() -> None:
    limiter, clock = _limiter(max_limit=10, initial=2)
    for _ in range(20):
        _refused(limiter, clock)
    assert limiter.limit == 1


def test_after_a_cut_it_creeps_back_and_finds_more_capacity_fast() -> None:
    limiter, clock = _limiter(initial=50)
    _refused(limiter, clock)
    assert limiter.limit == 45
    for _ in range(4):
        _round(limiter, clock, 0.05)
    assert 46 <= limiter.limit <= 49  # about one per round trip below the last level
    rounds = 0
    while limiter.limit < 90:  # the server took 50 without a refusal: probe faster
        _round(limiter, clock, 0.05)
        rounds += 1
    assert rounds < 30  # 1, 2, 4 ... per round trip, not one


def test_a_rising_latency_stops_growth_and_brings_the_limit_down() -> None:
    limiter, clock = _limiter(initial=20)
    limiter._slow_start = False
    for _ in range(5):
        _round(limiter, clock, 0.05)
    steady = limiter.limit
    assert steady > 20
    for _ in range(5):
        _round(limiter, clock, 0.2)  # four times the baseline: the server queues
    assert limiter.limit < steady
    assert limiter.cuts >= 1
    recent, baseline = limiter.latency
    assert recent > 1.5 * baseline


def test_a_caller_that_uses_less_than_half_the_limit_does_not_grow_it() -> None:
    limiter, clock = _limiter(initial=20)
    for _ in range(50):
        limiter._in_flight += 1
        started = clock.now
        clock.now += 0.05
        limiter.release(started)
    assert limiter.limit == 20


async def test_calls_wait_in_order_for_room_and_a_cancelled_wait_gives_none_away() -> None:
    limiter = AdaptiveLimiter(10, initial=1)
    await limiter.acquire()
    order: list[int] = []

    async def wait(number: int) -> None:
        await limiter.acquire()
        order.append(number)

    async with anyio.create_task_group() as group:
        cancelled = anyio.CancelScope()

        async def cancelled_wait() -> None:
            with cancelled:
                await limiter.acquire()

        group.start_soon(cancelled_wait)
        for number in range(3):
            group.start_soon(wait, number)
            await anyio.wait_all_tasks_blocked()  # in line in this order
        cancelled.cancel()
        await anyio.wait_all_tasks_blocked()
        assert limiter.in_flight == 1
        for _ in range(3):
            limiter.forget()  # each room given back goes to the next in line
            await anyio.wait_all_tasks_blocked()
    assert order == [0, 1, 2]
    assert limiter.in_flight == 1


def test_config_takes_true_or_false_and_the_environment_words() -> None:
    assert load_config({"adaptive_concurrency": True}).adaptive_concurrency is True
    assert load_config({}, {"PYNECTOR_ADAPTIVE_CONCURRENCY": "true"}).adaptive_concurrency
    assert not load_config({}, {"PYNECTOR_ADAPTIVE_CONCURRENCY": "0"}).adaptive_concurrency
    with pytest.raises(ConfigurationError, match="adaptive_concurrency"):
        load_config({"adaptive_concurrency": "yes"})
    with pytest.raises(ConfigurationError, match="PYNECTOR_ADAPTIVE_CONCURRENCY"):
        load_config({}, {"PYNECTOR_ADAPTIVE_CONCURRENCY": "maybe"})


async def test_the_client_shows_its_limit_and_auto_turns_it_on() -> None:
    transport = MockTransport(lambda data, **options: {"ok": True})
    async with Pynector(transport=transport, config={"max_connections": 30}) as client:
        assert client.concurrency_limit == 30
        results = await client.batch_request(
            [({"n": n}, {}) for n in range(50)], max_concurrency="auto"
        )
        assert results == [{"ok": True}] * 50
        assert 4 < client.concurrency_limit <= 30  # adaptive now, grown from 4
        with pytest.raises(ConfigurationError, match="'auto'"):
            await client.batch_request([({"n": 1}, {})], max_concurrency="many")  # type: ignore[call-overload]
    async with Pynector(transport=transport, config={"adaptive_concurrency": True}) as client:
        assert client.concurrency_limit == 4
        await client.request({"n": 1})


async def test_an_overloaded_stream_cuts_the_limit_and_a_finished_one_teaches_nothing() -> None:
    refuse = True

    async def handler(data: Any, **options: Any) -> Any:
        if refuse:
            raise RateLimitError("busy", status_code=429)
        return [b"a", b"b"]

    transport = MockTransport(handler)
    config = {"adaptive_concurrency": True}
    async with Pynector(transport=transport, config=config) as client:
        assert client._adaptive is not None
        with pytest.raises(RateLimitError):
            async with client.stream({"n": 1}) as items:
                [item async for item in items]
        assert client._adaptive.cuts == 1
        refuse = False
        before = client._adaptive.estimate
        async with client.stream({"n": 2}) as items:
            [item async for item in items]
        assert client._adaptive.estimate == before
        assert client._adaptive.in_flight == 0
