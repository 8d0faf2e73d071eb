"""``pynector.testing.MockTransport``: a full transport that records every call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from pynector import Call, Pynector
from pynector.errors import ServerError, TimeoutError
from pynector.testing import MockCall, MockTransport
from pynector.transport.protocol import CallTransport

pytestmark = pytest.mark.anyio


def _echo(data: Any, **options: Any) -> Any:
    return {"echo": data, **options}


def test_the_mock_is_a_declared_full_transport() -> None:
    assert CallTransport in type(MockTransport(_echo)).__mro__


def test_a_handler_that_is_not_callable_is_refused_with_an_example() -> None:
    with pytest.raises(TypeError, match=r"needs a callable: MockTransport\(lambda data"):
        MockTransport({"ok": True})  # type: ignore[arg-type]


async def test_each_recorded_call_carries_its_attempt_and_deadline() -> None:
    attempts = 0

    def flaky(data: Any, **options: Any) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ServerError("busy", status_code=503)
        return "ok"

    mock = MockTransport(flaky)
    async with Pynector(transport=mock, config={"retry_delay": 0}) as client:
        before = time.monotonic()
        assert await client.request_with_retry({"q": 1}, timeout=30, tag="t") == "ok"
    assert mock.calls == [MockCall({"q": 1}, {"tag": "t"}), MockCall({"q": 1}, {"tag": "t"})]
    calls = [recorded.call for recorded in mock.calls]
    assert all(isinstance(call, Call) for call in calls)
    assert [call.attempt for call in calls if call is not None] == [1, 2]
    for call in calls:
        assert call is not None
        assert call.timeout == 30
        assert call.deadline is not None
        assert before + 29 < call.deadline < time.monotonic() + 30
        assert call.batch_index is None
        assert call.streaming is False


async def test_a_batch_records_each_requests_index() -> None:
    mock = MockTransport(_echo)
    async with Pynector(transport=mock) as client:
        results = await client.batch_request([(n, {}) for n in range(5)], max_concurrency=1)
    assert results == [{"echo": n} for n in range(5)]
    indexes = {r.data: r.call.batch_index for r in mock.calls if r.call is not None}
    assert indexes == {n: n for n in range(5)}


async def test_a_call_cut_short_by_its_deadline_is_retried_since_the_mock_is_replayable() -> None:
    first = anyio.Event()

    async def hangs_once(data: Any, **options: Any) -> Any:
        if not first.is_set():
            first.set()
            await anyio.sleep_forever()
        return "second"

    mock = MockTransport(hangs_once)
    async with Pynector(transport=mock, config={"retry_delay": 0}) as client:
        assert await client.request_with_retry("x", max_retries=1, timeout=0.2) == "second"
    assert [r.call.attempt for r in mock.calls if r.call is not None] == [1, 2]


async def test_a_mock_that_is_not_replayable_is_not_retried_after_a_deadline() -> None:
    class OnceOnly(MockTransport):
        def replayable(self, call: Call[Any]) -> bool:
            return False

    async def hangs(data: Any, **options: Any) -> Any:
        await anyio.sleep_forever()

    mock = OnceOnly(hangs)
    async with Pynector(transport=mock, config={"retry_delay": 0}) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.request_with_retry("x", max_retries=3, timeout=0.2)
    assert caught.value.retryable is False
    assert mock.call_count == 1


async def test_a_stream_call_is_recorded_as_streaming() -> None:
    mock = MockTransport(lambda data, **options: [b"a", b"b"])
    async with Pynector(transport=mock) as client, client.stream("s") as items:
        assert [item async for item in items] == [b"a", b"b"]
    call = mock.calls[0].call
    assert call is not None
    assert call.streaming is True


async def test_used_on_its_own_the_mock_answers_with_a_call_of_its_own() -> None:
    async def chunks(data: Any, **options: Any) -> AsyncIterator[str]:
        for item in data:
            yield item

    mock = MockTransport(_echo)
    assert await mock.request("x", flag=True) == {"echo": "x", "flag": True}
    (recorded,) = mock.calls
    assert recorded.options == {"flag": True}
    assert recorded.call is not None
    assert (recorded.call.attempt, recorded.call.deadline) == (1, None)
    assert recorded.call.transport is mock

    streaming = MockTransport(chunks)
    async with streaming.stream("abc") as items:
        assert [item async for item in items] == ["a", "b", "c"]
    assert streaming.calls[0].call is not None
    assert streaming.calls[0].call.streaming is True


async def test_with_record_off_only_the_count_is_kept() -> None:
    mock = MockTransport(_echo, record=False)
    async with Pynector(transport=mock) as client:
        await client.batch_request([(n, {}) for n in range(10)])
    assert (mock.call_count, mock.calls) == (10, [])
    assert (mock.connect_count, mock.disconnect_count, mock.connected) == (1, 1, False)
