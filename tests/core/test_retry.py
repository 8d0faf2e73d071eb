"""request_with_retry: attempts, backoff, Retry-After and deadlines, on asyncio and trio."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector.errors import (
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    ServerError,
    TimeoutError,
    TransportError,
)
from pynector.testing import MockTransport

pytestmark = pytest.mark.anyio


class Script:
    """A handler that plays a script: an exception to raise or a value to return."""

    def __init__(self, *steps: Any) -> None:
        self.steps = list(steps)
        self.times: list[float] = []

    async def __call__(self, data: Any, **options: Any) -> Any:
        self.times.append(anyio.current_time())
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if step == "hang":
            await anyio.Event().wait()
        if isinstance(step, BaseException):
            raise step
        return step


def server_error(n: int = 0) -> ServerError:
    return ServerError(f"503 number {n}", status_code=503)


@pytest.mark.parametrize("max_retries", [0, 1, 2, 5])
async def test_makes_one_plus_max_retries_attempts_and_raises_the_last_error(
    max_retries: int,
) -> None:
    script = Script(*[server_error(n) for n in range(max_retries + 1)])
    async with Pynector(transport=MockTransport(script)) as client:
        with pytest.raises(ServerError, match=f"503 number {max_retries}$"):
            await client.request_with_retry("x", max_retries=max_retries, retry_delay=0)
    assert len(script.times) == 1 + max_retries


async def test_recovers_when_a_retry_succeeds() -> None:
    script = Script(server_error(), TransportError("reset", retryable=True), "ok")
    async with Pynector(transport=MockTransport(script)) as client:
        assert await client.request_with_retry("x", max_retries=3, retry_delay=0) == "ok"
    assert len(script.times) == 3


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("401", status_code=401),
        TransportError("bad request", retryable=False),
        ConfigurationError("bad input"),
    ],
)
async def test_never_retries_errors_that_are_not_retryable(error: Exception) -> None:
    script = Script(error, "ok")
    async with Pynector(transport=MockTransport(script)) as client:
        with pytest.raises(type(error)):
            await client.request_with_retry("x", max_retries=3, retry_delay=0)
    assert len(script.times) == 1


async def test_default_max_retries_comes_from_config_retry_count() -> None:
    script = Script(server_error())
    config = {"retry_count": 1, "retry_delay": 0}
    async with Pynector(transport=MockTransport(script), config=config) as client:
        with pytest.raises(ServerError):
            await client.request_with_retry("x")
    assert len(script.times) == 2


async def test_one_attempts_timeout_is_retried() -> None:
    script = Script("hang", "ok")
    async with Pynector(transport=MockTransport(script)) as client:
        result = await client.request_with_retry("x", max_retries=1, retry_delay=0, timeout=0.2)
    assert result == "ok"
    assert len(script.times) == 2


async def test_server_retry_after_replaces_the_backoff() -> None:
    # A backoff of up to 1000 s would not finish within the test's bound.
    script = Script(RateLimitError("429", status_code=429, retry_after=0.3), "ok")
    async with Pynector(transport=MockTransport(script)) as client:
        with anyio.fail_after(20):
            assert await client.request_with_retry("x", max_retries=1, retry_delay=1000) == "ok"
    waited = script.times[1] - script.times[0]
    assert 0.3 <= waited < 10


async def test_retry_after_beyond_the_bound_is_raised_at_once() -> None:
    script = Script(RateLimitError("429", status_code=429, retry_after=30), "ok")
    config = {"retry_after_max": 1.0}
    async with Pynector(transport=MockTransport(script), config=config) as client:
        start = anyio.current_time()
        with pytest.raises(RateLimitError):
            await client.request_with_retry("x", max_retries=3)
    assert anyio.current_time() - start < 1
    assert len(script.times) == 1


async def test_wait_past_the_callers_deadline_is_not_slept() -> None:
    script = Script(ServerError("503", status_code=503, retry_after=5), "ok")
    async with Pynector(transport=MockTransport(script)) as client:
        start = anyio.current_time()
        with anyio.fail_after(2), pytest.raises(ServerError):
            await client.request_with_retry("x", max_retries=3)
    assert anyio.current_time() - start < 1
    assert len(script.times) == 1


async def test_backoff_is_capped_by_retry_max_delay() -> None:
    # Uncapped, the waits would be drawn from up to 1000, 2000, 4000 s.
    script = Script(*[server_error(n) for n in range(3)], "ok")
    config = {"retry_max_delay": 0.05}
    async with Pynector(transport=MockTransport(script), config=config) as client:
        with anyio.fail_after(10):
            assert await client.request_with_retry("x", max_retries=3, retry_delay=1000) == "ok"
    assert len(script.times) == 4


async def test_a_429_with_retry_after_pauses_every_request_of_the_client() -> None:
    starts: dict[str, float] = {}
    first_failed = anyio.Event()

    async def handler(data: str, **options: Any) -> str:
        starts[data] = anyio.current_time()
        if data == "limited":
            first_failed.set()
            raise RateLimitError("429", status_code=429, retry_after=0.5)
        return data

    async with Pynector(transport=MockTransport(handler)) as client:
        with pytest.raises(RateLimitError):
            await client.request("limited")
        assert await client.request("other") == "other"
    assert starts["other"] - starts["limited"] >= 0.5


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"retry_delay": -0.1}, "retry_delay"),
        ({"retry_delay": math.nan}, "retry_delay"),
        ({"retry_delay": math.inf}, "retry_delay"),
    ],
)
async def test_bad_retry_arguments_are_configuration_errors(
    kwargs: dict[str, Any], name: str
) -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: "ok")) as client:
        with pytest.raises(ConfigurationError, match=name):
            await client.request_with_retry("x", **kwargs)


async def test_timeout_error_of_the_last_attempt_is_raised() -> None:
    script = Script("hang")
    async with Pynector(transport=MockTransport(script)) as client:
        with pytest.raises(TimeoutError):
            await client.request_with_retry("x", max_retries=1, retry_delay=0, timeout=0.1)
    assert len(script.times) == 2
