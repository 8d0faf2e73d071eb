"""Property-based tests of the core: config parsing, Retry-After, and batches against a model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynector import Pynector
from pynector._config import load_config
from pynector.concurrency import MAX_RETRY_AFTER, parse_rate, parse_retry_after
from pynector.errors import ConfigurationError, TimeoutError, TransportError
from pynector.testing import MockTransport

BACKENDS = ["asyncio", "trio"]
FAST = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@FAST
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6))
def test_timeout_is_accepted_exactly_when_positive_and_finite(value: float) -> None:
    valid = math.isfinite(value) and value > 0
    try:
        loaded = load_config({"timeout": value}, {})
    except ConfigurationError as exc:
        assert not valid
        assert "config['timeout']" in str(exc)
    else:
        assert valid
        assert loaded.timeout == value


@FAST
@given(st.text(max_size=12))
def test_environment_strings_either_parse_or_name_the_variable(raw: str) -> None:
    try:
        loaded = load_config(None, {"PYNECTOR_RETRY_COUNT": raw})
    except ConfigurationError as exc:
        assert "PYNECTOR_RETRY_COUNT" in str(exc)
    else:
        assert loaded.retry_count >= 0
        assert loaded.retry_count == int(raw.strip())


@FAST
@given(st.integers(1, 10**6), st.sampled_from(["s", "sec", "second", "m", "min", "minute"]))
def test_rate_strings_round_trip(count: int, unit: str) -> None:
    assert parse_rate(f"{count}/{unit}") == (count, 1.0 if unit.startswith("s") else 60.0)


@FAST
@given(st.floats(min_value=0.001, max_value=10**6, allow_nan=False))
def test_numeric_rates_never_allow_more_than_asked(rate: float) -> None:
    count, period = parse_rate(rate)
    assert count >= 1
    assert count / period <= rate * (1 + 1e-9)


@FAST
@given(st.text(max_size=40))
def test_retry_after_is_none_or_within_bounds(value: str) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or 0.0 <= seconds <= MAX_RETRY_AFTER


@FAST
@given(st.integers(-(10**9), 10**9))
def test_retry_after_seconds_are_clamped(value: int) -> None:
    assert parse_retry_after(str(value)) == min(max(float(value), 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Step:
    """What the mock does for one request: answer, fail, or never answer."""

    kind: str  # "ok" | "fail" | "hang"
    delay: float


steps = st.builds(
    Step, st.sampled_from(["ok", "ok", "ok", "fail", "hang"]), st.sampled_from([0.0, 0.001, 0.003])
)


class Model:
    """Plays the script and watches concurrency."""

    def __init__(self, script: list[Step]) -> None:
        self.script = script
        self.in_flight = 0
        self.peak = 0
        self.errors = [TransportError(f"request {n} failed") for n in range(len(script))]

    async def __call__(self, index: int, **options: Any) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            step = self.script[index]
            await anyio.sleep(step.delay)
            if step.kind == "hang":
                await anyio.Event().wait()
            if step.kind == "fail":
                raise self.errors[index]
            return ("ok", index)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    script=st.lists(steps, max_size=25),
    cap=st.integers(1, 6),
    raise_on_error=st.booleans(),
)
def test_batch_matches_the_model(
    backend: str, script: list[Step], cap: int, raise_on_error: bool
) -> None:
    model = Model(script)
    hangs = any(step.kind == "hang" for step in script)
    timeout = 0.05 if hangs else None

    async def run() -> Any:
        async with Pynector(transport=MockTransport(model, record=False)) as client:
            requests: list[tuple[int, dict[str, Any]]] = [
                (index, {}) for index in range(len(script))
            ]
            return await client.batch_request(requests, cap, timeout, raise_on_error)

    failures = {id(model.errors[n]) for n, step in enumerate(script) if step.kind == "fail"}
    try:
        results = anyio.run(run, backend=backend)
    except TransportError as exc:
        assert raise_on_error
        assert id(exc) in failures
    except TimeoutError:
        assert raise_on_error
        assert hangs
    else:
        assert not (raise_on_error and failures)
        assert len(results) == len(script)
        for index, (step, result) in enumerate(zip(script, results, strict=True)):
            if step.kind == "ok":
                # A request still queued when the batch deadline hit also times out.
                assert result == ("ok", index) or (hangs and isinstance(result, TimeoutError))
            elif step.kind == "fail":
                assert result is model.errors[index] or (hangs and isinstance(result, TimeoutError))
            else:
                assert isinstance(result, TimeoutError)
    assert model.peak <= cap
