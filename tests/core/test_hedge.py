"""Hedging's parts: the latency histogram, the policy, the setting, and the race of two copies.

The race runs the client over :class:`~pynector.testing.MockTransport`, whose
handler is steered by events: no copy waits on a clock except the first one,
which a hedge is meant to overtake.
"""

from __future__ import annotations

import math
import random
from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector._config import load_config
from pynector.concurrency import HedgePolicy, LatencyHistogram, parse_hedge_after
from pynector.errors import ConfigurationError, ServerError
from pynector.testing import MockTransport

HEDGE = 0.02


# -- the histogram -------------------------------------------------------------------------


def test_a_percentile_is_within_a_bucket_above_the_true_value() -> None:
    histogram = LatencyHistogram(window=10_000)
    rng = random.Random(7)
    latencies = sorted(rng.lognormvariate(math.log(0.05), 0.5) for _ in range(5000))
    for value in latencies:
        histogram.record(value)
    for q in (50, 95, 99):
        true = latencies[math.ceil(q / 100 * len(latencies)) - 1]
        estimate = histogram.percentile(q)
        assert estimate is not None
        assert true <= estimate <= true * 1.1


def test_the_histogram_keeps_two_generations_of_recent_latencies() -> None:
    histogram = LatencyHistogram(window=100)
    assert histogram.percentile(50) is None
    for _ in range(100):
        histogram.record(1.0)
    for _ in range(100):
        histogram.record(0.01)
    assert histogram.count == 200
    assert histogram.percentile(99) == pytest.approx(1.0, rel=0.1)
    for _ in range(100):
        histogram.record(0.01)  # the 1 s generation is retired
    assert histogram.count == 200
    assert histogram.percentile(99) == pytest.approx(0.01, rel=0.1)


def test_the_histogram_takes_latencies_of_any_size_in_fixed_memory() -> None:
    histogram = LatencyHistogram(window=10)
    for value in (0.0, 1e-9, 3600.0 * 24, 5.0):
        histogram.record(value)
    assert histogram.count == 4
    assert histogram.percentile(1) == pytest.approx(1e-4, rel=0.1)  # the first bucket
    assert histogram.percentile(100) is not None


@pytest.mark.parametrize(("window", "max_age"), [(0, 1.0), (True, 1.0), (10, 0), (10, -1.0)])
def test_a_bad_histogram_size_is_refused(window: Any, max_age: Any) -> None:
    with pytest.raises(ConfigurationError):
        LatencyHistogram(window, max_age)


# -- the policy and the setting ---------------------------------------------------------------


def test_a_fixed_policy_always_waits_its_seconds() -> None:
    policy = HedgePolicy(0.5)
    assert policy.delay() == 0.5
    policy.record(10.0)
    assert policy.delay() == 0.5
    assert policy.histogram is None


def test_a_percentile_policy_does_not_hedge_until_it_knows_enough_latencies() -> None:
    policy = HedgePolicy("p95")
    assert policy.min_samples == 40
    assert HedgePolicy("p99").min_samples == 200
    assert HedgePolicy("p50").min_samples == 20
    for _ in range(39):
        assert policy.delay() is None
        policy.record(0.010)
    assert policy.delay() is None
    policy.record(0.010)
    delay = policy.delay()
    assert delay is not None
    assert 0.010 <= delay <= 0.011


def test_a_percentile_policy_never_waits_less_than_its_floor() -> None:
    policy = HedgePolicy("p90", min_samples=1)
    policy.record(0.0)
    assert policy.delay() == 0.001


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (0.5, 0.5),
        (2, 2.0),
        ("0.25", 0.25),
        ("p95", "p95"),
        (" P99 ", "p99"),
        ("p99.9", "p99.9"),
        (None, None),
        ("none", None),
        ("", None),
    ],
)
def test_hedge_after_forms(value: Any, parsed: Any) -> None:
    assert parse_hedge_after(value) == parsed


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, True, "p0", "p100", "p", "fast", [1]])
def test_a_bad_hedge_after_names_the_key_and_the_forms(value: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config({"hedge_after": value}, {})
    message = str(caught.value)
    assert f"config['hedge_after']={value!r} is invalid" in message
    assert "'p95'" in message
    assert "None for no hedging" in message


def test_hedge_after_comes_from_config_or_the_environment() -> None:
    assert load_config({}, {}).hedge_after is None
    assert load_config({"hedge_after": "p95"}, {}).hedge_after == "p95"
    assert load_config({}, {"PYNECTOR_HEDGE_AFTER": "0.5"}).hedge_after == 0.5
    assert load_config({}, {"PYNECTOR_HEDGE_AFTER": "p99"}).hedge_after == "p99"
    assert load_config({}, {"PYNECTOR_HEDGE_AFTER": "none"}).hedge_after is None
    with pytest.raises(ConfigurationError, match="environment variable PYNECTOR_HEDGE_AFTER"):
        load_config({}, {"PYNECTOR_HEDGE_AFTER": "soon"})


def test_a_client_without_hedge_after_keeps_its_fast_path() -> None:
    client = Pynector(transport=MockTransport(lambda data, **options: data))
    assert client._hedge is None
    assert client._limited is False


# -- the race, through the client ----------------------------------------------------------


class _Script:
    """A handler whose copies do what the test says: copy 1 arrives second."""

    def __init__(self) -> None:
        self.arrived = 0
        self.cancelled: list[int] = []
        self.first_may_end = anyio.Event()

    async def first(self) -> Any:
        raise NotImplementedError

    async def second(self) -> Any:
        raise NotImplementedError

    async def __call__(self, data: Any, **options: Any) -> Any:
        self.arrived += 1
        copy = self.arrived
        try:
            return await (self.first() if copy == 1 else self.second())
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(copy)
            raise


@pytest.mark.anyio
async def test_the_second_copy_wins_and_the_first_is_cancelled() -> None:
    class Script(_Script):
        async def first(self) -> Any:
            await anyio.sleep_forever()

        async def second(self) -> Any:
            return "second"

    script = Script()
    async with Pynector(transport=MockTransport(script), config={"hedge_after": HEDGE}) as client:
        with anyio.fail_after(5):
            assert await client.request({"q": 1}) == "second"
    assert script.arrived == 2
    assert script.cancelled == [1]


@pytest.mark.anyio
async def test_a_failed_copy_waits_for_the_other_and_both_failing_raise_the_first_error() -> None:
    class Script(_Script):
        def __init__(self, first_fails: bool) -> None:
            super().__init__()
            self.first_fails = first_fails

        async def first(self) -> Any:
            await self.first_may_end.wait()
            if self.first_fails:
                raise ServerError("first copy failed", status_code=503)
            return "first"

        async def second(self) -> Any:
            self.first_may_end.set()  # the first copy ends after this one has failed
            raise ServerError("second copy failed", status_code=500)

    script = Script(first_fails=False)
    async with Pynector(transport=MockTransport(script), config={"hedge_after": HEDGE}) as client:
        with anyio.fail_after(5):
            assert await client.request({"q": 1}) == "first"
    assert script.arrived == 2
    assert script.cancelled == []

    script = Script(first_fails=True)
    async with Pynector(transport=MockTransport(script), config={"hedge_after": HEDGE}) as client:
        with anyio.fail_after(5), pytest.raises(ServerError) as caught:
            await client.request({"q": 1})
    assert caught.value.status_code == 503
    assert script.arrived == 2


@pytest.mark.anyio
async def test_a_first_copy_that_fails_at_once_is_not_hedged() -> None:
    calls = 0

    def fail(data: Any, **options: Any) -> Any:
        nonlocal calls
        calls += 1
        raise ServerError("down", status_code=503)

    async with Pynector(transport=MockTransport(fail), config={"hedge_after": HEDGE}) as client:
        with pytest.raises(ServerError):
            await client.request({"q": 1})
    assert calls == 1


@pytest.mark.anyio
async def test_a_cancelled_hedged_call_cancels_both_copies() -> None:
    class Script(_Script):
        async def first(self) -> Any:
            await anyio.sleep_forever()

        async def second(self) -> Any:
            self.first_may_end.set()
            await anyio.sleep_forever()

    script = Script()
    async with Pynector(transport=MockTransport(script), config={"hedge_after": HEDGE}) as client:
        with anyio.move_on_after(5) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(client.request, {"q": 1})
                await script.first_may_end.wait()  # both copies are in flight
                group.cancel_scope.cancel()
        assert not scope.cancelled_caught
    assert sorted(script.cancelled) == [1, 2]
