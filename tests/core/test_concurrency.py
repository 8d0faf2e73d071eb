"""The concurrency helpers on their own: deadline, pool, retry policy, rate limiter."""

from __future__ import annotations

import asyncio
import itertools
import math
import subprocess
import sys
import types
from typing import Any

import anyio
import pytest
import sniffio

from pynector.concurrency import (
    MAX_RETRY_AFTER,
    RateLimiter,
    RetryDecision,
    RetryPolicy,
    WorkerPool,
    _deadline,
    deadline,
    parse_rate,
    parse_retry_after,
    remaining_time,
    retry_after_from_headers,
)
from pynector.errors import ConfigurationError, TimeoutError, TransportError


class Retryable(Exception):
    retryable = True

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("transient")
        self.retry_after = retry_after


def test_backoff_doubles_from_the_base_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(max_retries=10, base_delay=0.5, max_delay=3.0, jitter=False)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    draws = [policy.backoff(3) for _ in range(2000)]
    assert all(0.0 <= draw <= 4.0 for draw in draws)
    assert 1.5 < sum(draws) / len(draws) < 2.5  # the mean of U(0, 4) is 2


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert RetryPolicy(max_retries=10**6, jitter=False, max_delay=30).backoff(10**6) == 30


def test_decide_retries_only_retryable_errors_within_the_attempts() -> None:
    policy = RetryPolicy(max_retries=2, jitter=False)
    assert policy.decide(1, Retryable()) == RetryDecision(1.0, "backoff")
    assert policy.decide(2, Retryable()) == RetryDecision(2.0, "backoff")
    assert policy.decide(3, Retryable()) is None
    assert policy.decide(1, ValueError("not retryable")) is None
    assert policy.decide(1, TransportError("x", retryable=False)) is None


def test_retry_after_replaces_the_backoff_within_the_bound() -> None:
    policy = RetryPolicy(max_retry_after=10, jitter=False)
    assert policy.decide(1, Retryable(retry_after=7)) == RetryDecision(7.0, "retry-after")
    assert policy.decide(1, Retryable(retry_after=-3)) == RetryDecision(0.0, "retry-after")
    assert policy.decide(1, Retryable(retry_after=11)) is None


def test_a_wait_past_the_deadline_is_refused() -> None:
    policy = RetryPolicy(jitter=False)
    assert policy.decide(1, Retryable(retry_after=5), time_left=4.0) is None
    assert policy.decide(1, Retryable(retry_after=3), time_left=4.0) == RetryDecision(
        3.0, "retry-after"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 2.0},
        {"base_delay": math.nan},
        {"max_delay": -1},
        {"max_retry_after": math.inf},
        {"base_delay": "1"},
    ],
)
def test_bad_policy_values_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize("bad", ["10/h", "ten/s", "0/s", "", 0, -1, math.nan, True, [10]])
def test_parse_rate_rejects_bad_rates_with_the_forms_it_takes(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="600/m"):
        parse_rate(bad)


@pytest.mark.anyio
async def test_deadline_raises_pynector_timeout_and_none_means_no_deadline() -> None:
    with pytest.raises(TimeoutError, match=r"thing timed out after 0\.05 s"):
        with deadline(0.05, "thing"):
            await anyio.Event().wait()
    with deadline(None):
        assert remaining_time() == math.inf
    with anyio.CancelScope(deadline=anyio.current_time() + 10):
        await anyio.lowlevel.checkpoint()
        assert 0 < remaining_time() <= 10


@pytest.mark.anyio
async def test_deadline_is_an_anyio_cancel_scope_that_nests() -> None:
    # What runs inside sees the deadline as AnyIO's effective deadline...
    with deadline(30.0):
        assert 29 < remaining_time() <= 30
        # ...a nearer enclosing one wins, and its expiry is not this deadline's
        with anyio.move_on_after(0.05) as outer:
            limit = deadline(30.0)
            with limit:
                assert remaining_time() <= 0.05
                await anyio.Event().wait()
        assert outer.cancelled_caught
        assert not limit.expired
        # ...and cancelling from outside still reaches the block.
        with anyio.CancelScope() as scope:
            with deadline(30.0):
                scope.cancel()
                await anyio.Event().wait()
        assert scope.cancelled_caught


@pytest.mark.anyio
async def test_anyio_private_asyncio_cancel_scope_is_still_what_the_fast_path_expects() -> None:
    # Canary: on asyncio the deadline builds AnyIO's backend CancelScope class
    # directly, on the loop's clock. If this fails, AnyIO changed that private
    # API: every deadline now takes the slower public path (still correct);
    # update pynector/concurrency/_deadline.py to the new AnyIO.
    made = type(anyio.CancelScope())
    scope = _deadline._cancel_scope(5.0)
    if sniffio.current_async_library() == "asyncio":
        backend = sys.modules.get(_deadline._ASYNCIO_BACKEND)
        assert backend is not None, f"AnyIO no longer has {_deadline._ASYNCIO_BACKEND}"
        private = getattr(backend, "CancelScope", None)
        assert private is made, "anyio.CancelScope() no longer makes the backend's CancelScope"
        assert issubclass(made, anyio.CancelScope)
        assert made is not anyio.CancelScope
        assert type(scope) is private, "the deadline fell back to the public API"
        loop = asyncio.get_running_loop()
        assert abs(anyio.current_time() - loop.time()) < 0.1, "AnyIO's clock is not the loop's"
    else:
        assert type(scope) is made
    assert 4.9 < scope.deadline - anyio.current_time() <= 5.0


FIRST_DEADLINE = """
import asyncio
from pynector.concurrency import _deadline, deadline

async def main():
    with deadline(5.0):
        pass
    print(_deadline._asyncio_scope.__module__, _deadline._asyncio_scope.__qualname__)

asyncio.run(main())
"""


def test_the_first_deadline_of_a_fresh_asyncio_program_takes_the_fast_path() -> None:
    # AnyIO imports its asyncio backend on first use: the check must not run before that.
    done = subprocess.run(
        [sys.executable, "-c", FIRST_DEADLINE], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [_deadline._ASYNCIO_BACKEND, "CancelScope"]


class _NotAnyiosScope(anyio.CancelScope):
    """A CancelScope subclass AnyIO does not create, as a changed backend might have."""


@pytest.mark.anyio
@pytest.mark.parametrize("change", ["backend module gone", "a class anyio does not create"])
async def test_deadline_falls_back_to_the_public_cancel_scope_when_anyio_changes(
    change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if change == "backend module gone":
        monkeypatch.setattr(_deadline, "_ASYNCIO_BACKEND", "anyio._backends._no_such_module")
    else:
        fake = types.SimpleNamespace(CancelScope=_NotAnyiosScope)
        monkeypatch.setitem(sys.modules, "tests_fake_anyio_backend", fake)
        monkeypatch.setattr(_deadline, "_ASYNCIO_BACKEND", "tests_fake_anyio_backend")
    monkeypatch.setattr(_deadline, "_asyncio_scope", None)
    with pytest.raises(TimeoutError, match=r"timed out after 0\.05 s"):
        with deadline(0.05, "request"):
            await anyio.Event().wait()
    with deadline(30.0):
        assert 29 < remaining_time() <= 30
        await anyio.lowlevel.checkpoint()
    assert type(_deadline._cancel_scope(1.0)) is type(anyio.CancelScope())
    if sniffio.current_async_library() == "asyncio":
        assert _deadline._asyncio_scope is anyio.CancelScope  # learnt once: the public path


@pytest.mark.anyio
async def test_worker_pool_raises_the_first_error_itself() -> None:
    async def handler(index: int, item: int) -> None:
        if item == 3:
            raise KeyError(item)
        await anyio.lowlevel.checkpoint()

    with pytest.raises(KeyError):
        await WorkerPool(2).run(range(10), handler)


@pytest.mark.anyio
async def test_worker_pool_raises_an_error_of_the_iterable_itself() -> None:
    def items() -> Any:
        yield 1
        raise LookupError("source broke")

    async def handler(index: int, item: int) -> None:
        await anyio.lowlevel.checkpoint()

    with pytest.raises(LookupError, match="source broke"):
        await WorkerPool(3).run(items(), handler)


@pytest.mark.anyio
async def test_workers_that_met_at_an_async_pull_all_take_ready_items_at_once() -> None:
    """Workers queued behind one pull each take an item in the next turn, not one a turn."""
    size = 20
    arrived, gate = anyio.Event(), anyio.Event()
    started: list[int] = []

    async def items() -> Any:
        await arrived.wait()  # every other worker queues behind this first pull
        for n in range(size):
            yield n

    async def handler(index: int, item: int) -> None:
        started.append(item)
        await gate.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(WorkerPool(size).run, items(), handler)
        await anyio.wait_all_tasks_blocked()
        arrived.set()
        # A lock handed from worker to worker would start one handler per turn
        # of the event loop; a few turns are enough for all of them here.
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert sorted(started) == list(range(size))
        gate.set()


@pytest.mark.parametrize("size", [0, -2, 1.0, None])
def test_worker_pool_size_must_be_a_positive_whole_number(size: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        WorkerPool(size)


@pytest.mark.anyio
async def test_rate_limiter_allows_count_starts_in_any_window() -> None:
    limiter = RateLimiter(5, 0.5, burst=5)
    starts = []
    for _ in range(12):
        await limiter.acquire()
        starts.append(anyio.current_time())
    assert starts[4] - starts[0] < 0.25  # a burst of 5 goes at once (rate_burst=5)
    # Then a token bucket of 5 refilled at 10/s: one start every 0.1 s.
    assert starts[5] - starts[0] >= 0.1 - 1e-6
    # A start woken late keeps the schedule: the next may come up to the limiter's
    # slack (half the margin's seconds, 0.01 s) less than the spacing after it.
    paced = itertools.pairwise(starts[5:])
    assert all(later - earlier >= 0.09 for earlier, later in paced)
    assert starts[11] - starts[5] >= 6 * 0.1 - 0.01  # and on average the spacing holds


@pytest.mark.anyio
async def test_rate_limiter_pause_holds_everyone_back() -> None:
    limiter = RateLimiter(None)
    limiter.pause(0.3)
    start = anyio.current_time()
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(limiter.acquire)
    assert anyio.current_time() - start >= 0.3


@pytest.mark.anyio
async def test_a_cancelled_waiter_takes_no_slot() -> None:
    limiter = RateLimiter(1, 0.3)
    await limiter.acquire()
    with anyio.move_on_after(0.05):
        await limiter.acquire()
    start = anyio.current_time()
    await limiter.acquire()
    assert anyio.current_time() - start < 0.3


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        ("Tue, 01 Jan 2030 00:01:00 GMT", 60.0),
        ("Mon, 01 Jan 2029 00:00:00 GMT", 0.0),
        ("99999999999", MAX_RETRY_AFTER),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_takes_seconds_or_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    now = 1_893_456_000.0  # 2030-01-01 00:00:00 UTC
    assert parse_retry_after(value, now=now) == seconds


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_after_from_headers({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_from_headers({"retry-after-ms": "junk", "retry-after": "9"}) == 9.0
    assert retry_after_from_headers({}) is None
    assert retry_after_from_headers(None) is None
