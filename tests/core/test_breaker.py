"""Circuit breakers: the state machine, its settings, and a client's calls as a server sees them."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector._config import load_config
from pynector.concurrency import BreakerSettings, CircuitBreaker, MemoryStore
from pynector.concurrency._breaker import unhealthy
from pynector.errors import (
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    ConnectionError,
    RateLimitError,
    ServerError,
    TimeoutError,
    TransportError,
)

from ._outage import SETTINGS, OutageServer, calls


def _failures(breaker: CircuitBreaker, n: int, failed: bool | None = True) -> None:
    for _ in range(n):
        breaker.admit().record(failed)


# -- the state machine (no I/O) ------------------------------------------------


def test_it_opens_when_the_failure_ratio_is_reached_over_the_minimum_calls() -> None:
    breaker = CircuitBreaker("k", BreakerSettings(failure_ratio=0.5, minimum_calls=4, cooldown=60))
    _failures(breaker, 3)  # 3 of 3 failed, but fewer than the minimum
    assert breaker.state == "closed"
    _failures(breaker, 1)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as caught:
        breaker.admit()
    assert isinstance(caught.value, TransportError)
    assert not caught.value.retryable
    assert 59 < (caught.value.retry_after or 0) <= 60
    assert caught.value.key == "k"
    assert "for k is open" in str(caught.value)
    assert "circuit_breaker" in str(caught.value)


def test_successes_keep_the_ratio_below_the_threshold() -> None:
    breaker = CircuitBreaker("k", BreakerSettings(failure_ratio=0.5, minimum_calls=4))
    for _ in range(10):
        _failures(breaker, 1, False)
        _failures(breaker, 1, False)
        _failures(breaker, 1, True)  # a third fail: under one half
    assert breaker.state == "closed"


def test_outcomes_that_say_nothing_of_health_are_not_counted() -> None:
    breaker = CircuitBreaker("k", BreakerSettings(minimum_calls=2, cooldown=60))
    _failures(breaker, 50, None)
    _failures(breaker, 1, True)
    assert breaker.state == "closed"  # one counted outcome, under the minimum


def test_half_open_lets_the_probes_through_and_a_success_closes() -> None:
    # cooldown 0: half-open at once, no waiting needed.
    breaker = CircuitBreaker("k", BreakerSettings(minimum_calls=1, cooldown=0, probes=2))
    _failures(breaker, 1)
    assert breaker.state == "half_open"
    first, second = breaker.admit(), breaker.admit()
    with pytest.raises(CircuitOpenError, match="probe"):
        breaker.admit()  # both probes are out
    second.record(None)  # cancelled: its probe slot is free again
    third = breaker.admit()
    first.record(False)
    assert breaker.state == "closed"
    third.record(True)  # admitted before the breaker closed: stale, ignored
    assert breaker.state == "closed"
    breaker.admit().record(False)


def test_a_failed_probe_opens_the_breaker_again() -> None:
    breaker = CircuitBreaker("k", BreakerSettings(minimum_calls=1, cooldown=0))
    _failures(breaker, 1)
    probe = breaker.admit()
    breaker.settings = BreakerSettings(minimum_calls=1, cooldown=60)
    probe.record(True)
    assert breaker.state == "open"
    assert breaker.retry_after > 59


def test_outcomes_of_calls_admitted_before_it_opened_are_ignored() -> None:
    breaker = CircuitBreaker("k", BreakerSettings(minimum_calls=2, cooldown=0))
    late = [breaker.admit() for _ in range(5)]
    _failures(breaker, 2)
    assert breaker.state == "half_open"
    for permit in late:
        permit.record(True)
    assert breaker.state == "half_open"  # no probe failed: still waiting for one


def test_only_unhealthy_failures_count() -> None:
    assert unhealthy(ConnectionError("refused")) is True
    assert unhealthy(TimeoutError("slow")) is True
    assert unhealthy(ServerError("down", status_code=503)) is True
    assert unhealthy(ServerError("overloaded", status_code=529)) is True
    assert unhealthy(BadRequestError("bad", status_code=400)) is False
    assert unhealthy(RateLimitError("slow down", status_code=429)) is None
    assert unhealthy(CircuitOpenError("open", key="k", retry_after=1.0)) is None
    assert unhealthy(ConfigurationError("bad input")) is None


def test_the_memory_store_makes_a_breaker_of_the_settings() -> None:
    settings = BreakerSettings(cooldown=1.0)
    breaker = MemoryStore().breaker("k", settings)
    assert isinstance(breaker, CircuitBreaker)
    assert breaker.settings is settings


# -- settings ----------------------------------------------------------------


def test_the_config_key_takes_true_false_or_a_mapping() -> None:
    assert load_config({}).circuit_breaker is None
    assert load_config({"circuit_breaker": True}).circuit_breaker == BreakerSettings()
    assert load_config({"circuit_breaker": False}).circuit_breaker is None
    settings = load_config({"circuit_breaker": {"cooldown": 2, "probes": 3}}).circuit_breaker
    assert settings == BreakerSettings(cooldown=2, probes=3)
    env = load_config({}, {"PYNECTOR_CIRCUIT_BREAKER": '{"window": 5}'}).circuit_breaker
    assert env == BreakerSettings(window=5)
    assert load_config({}, {"PYNECTOR_CIRCUIT_BREAKER": "true"}).circuit_breaker is not None


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"failure_ratio": 0}, "failure_ratio"),
        ({"failure_ratio": 1.5}, "failure_ratio"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"minimum_calls": 2.5}, "minimum_calls"),
        ({"window": 0}, "window"),
        ({"cooldown": -1}, "cooldown"),
        ({"probes": 0}, "probes"),
        ({"cooldwn": 1}, "cooldwn"),
        ("yes", "circuit_breaker"),
        (3, "circuit_breaker"),
    ],
)
def test_bad_settings_are_a_configuration_error_naming_the_key(value: Any, named: str) -> None:
    with pytest.raises(ConfigurationError, match="circuit_breaker") as caught:
        load_config({"circuit_breaker": value})
    assert named in str(caught.value)


# -- through a client, as the server sees it ------------------------------------


@pytest.mark.anyio
async def test_while_open_calls_fail_at_once_and_never_reach_the_server() -> None:
    with OutageServer("503") as server:
        config = {"circuit_breaker": SETTINGS}
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            outcomes = await calls(client, 4)
            assert all(isinstance(o, ServerError) for o in outcomes)
            with anyio.fail_after(5):
                refused = await calls(client, 50)
            assert server.counts["503"] == 4  # the 50 calls after it opened: none arrived
            assert all(isinstance(o, CircuitOpenError) for o in refused)
            first = refused[0]
            assert isinstance(first, CircuitOpenError)
            assert first.key == client.limit_key == server.url
            server.mode = "ok"
            await calls(client, 3)  # still open for the cooldown
            assert server.counts["ok"] == 0


@pytest.mark.anyio
async def test_client_errors_never_open_the_breaker() -> None:
    with OutageServer("400") as server:
        config = {"circuit_breaker": SETTINGS}
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            outcomes = await calls(client, 12)
            server.mode = "404"
            outcomes += await calls(client, 12)
            server.mode = "429"
            outcomes += await calls(client, 12)
    assert server.total == 36  # every one was sent
    assert not any(isinstance(o, CircuitOpenError) for o in outcomes)


@pytest.mark.anyio
async def test_a_half_open_breaker_sends_one_probe_and_closes_on_its_success() -> None:
    settings = {**SETTINGS, "cooldown": 0, "probes": 1}
    with OutageServer("503") as server:
        config = {"circuit_breaker": settings}
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            await calls(client, 4)  # opened; half-open at once (cooldown 0)
            server.mode = "ok"
            async with anyio.create_task_group() as group:
                results: list[BaseException | None] = []

                async def one() -> None:
                    results.extend(await calls(client, 1))

                for _ in range(10):
                    group.start_soon(one)
            # One probe reached the server while the others were refused; then it closed.
            assert server.counts["ok"] == 1
            assert sum(isinstance(r, CircuitOpenError) for r in results) == 9
            assert await calls(client, 5) == [None] * 5
            assert server.counts["ok"] == 6


@pytest.mark.anyio
async def test_request_with_retry_fails_fast_on_an_open_breaker() -> None:
    with OutageServer("503") as server:
        config = {"circuit_breaker": SETTINGS, "retry_delay": 0.0, "retry_count": 10}
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            with anyio.fail_after(10), pytest.raises(CircuitOpenError):
                await client.request_with_retry({"path": "/"})
    assert server.counts["503"] == 4  # it opened after the fourth; the fifth was refused


@pytest.mark.anyio
async def test_a_stream_counts_its_opening() -> None:
    with OutageServer("503") as server:
        config = {"circuit_breaker": SETTINGS}
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            for _ in range(4):
                with pytest.raises(ServerError):
                    async with client.stream({"path": "/"}) as items:
                        async for _item in items:
                            pass
            with pytest.raises(CircuitOpenError):
                async with client.stream({"path": "/"}):
                    pass
    assert server.counts["503"] == 4


def test_failures_in_a_row_open_it_whatever_successes_the_window_holds() -> None:
    breaker = CircuitBreaker("k", BreakerSettings(minimum_calls=5, cooldown=60))
    _failures(breaker, 1000, False)  # a busy, healthy window
    _failures(breaker, 4)
    _failures(breaker, 1, False)  # the run is broken
    _failures(breaker, 4)
    assert breaker.state == "closed"
    _failures(breaker, 1)
    assert breaker.state == "open"
