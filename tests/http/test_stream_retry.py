"""Streams that recover before their first chunk, and the server's x-should-retry."""

from __future__ import annotations

import pytest

from pynector import Pynector
from pynector.errors import ConnectionError, NotFoundError, ServerError

from ._control import ControlServer

pytestmark = pytest.mark.anyio


def _client(control: ControlServer, engine: str) -> Pynector:
    return Pynector(transport_type="http", base_url=control.url, engine=engine)


async def test_a_stream_answered_503_is_opened_again_and_read_whole(
    control: ControlServer, key: str, engine: str
) -> None:
    data = {"path": "/flaky", "params": {"key": key, "fail": 2, "status": 503}}
    async with _client(control, engine) as client:
        async with client.stream(data, max_retries=3, retry_delay=0) as chunks:
            assert chunks.status_code == 200  # the stream of the attempt that opened
            assert chunks.attempts == 3
            body = b"".join([chunk async for chunk in chunks])
    assert body == b'{"attempt": 3}'
    assert control.key(key).attempts == 3


async def test_a_stream_without_max_retries_is_opened_once(
    control: ControlServer, key: str, engine: str
) -> None:
    data = {"path": "/flaky", "params": {"key": key, "fail": 1, "status": 503}}
    async with _client(control, engine) as client:
        with pytest.raises(ServerError):
            async with client.stream(data):
                pass
    assert control.key(key).attempts == 1


async def test_a_client_error_is_not_retried(control: ControlServer, key: str, engine: str) -> None:
    data = {"path": "/flaky", "params": {"key": key, "fail": 5, "status": 404}}
    async with _client(control, engine) as client:
        with pytest.raises(NotFoundError):
            async with client.stream(data, max_retries=3, retry_delay=0):
                pass
    assert control.key(key).attempts == 1


async def test_the_retries_used_up_raise_the_last_error(
    control: ControlServer, key: str, engine: str
) -> None:
    data = {"path": "/flaky", "params": {"key": key, "fail": 5, "status": 502}}
    async with _client(control, engine) as client:
        with pytest.raises(ServerError) as caught:
            async with client.stream(data, max_retries=2, retry_delay=0):
                pass
    assert caught.value.status_code == 502
    assert control.key(key).attempts == 3


async def test_a_retry_after_is_honoured_before_the_stream_is_opened_again(
    control: ControlServer, key: str, engine: str
) -> None:
    params = {"key": key, "fail": 1, "status": 429, "retry_after": "0.2"}
    async with _client(control, engine) as client:
        # retry_delay=30 would time the test out: the server's wait replaces it.
        async with client.stream(
            {"path": "/flaky", "params": params}, max_retries=1, retry_delay=30
        ) as chunks:
            assert await chunks.aread() == b'{"attempt": 2}'
    first, second = control.key(key).times
    assert second - first >= 0.2


async def test_a_connection_cut_before_the_first_chunk_is_retried(
    control: ControlServer, key: str, engine: str
) -> None:
    data = {"path": "/broken_stream", "params": {"key": key, "fail": 1, "sent": 0}}
    async with _client(control, engine) as client:
        async with client.stream(data, max_retries=2, retry_delay=0) as chunks:
            body = b"".join([chunk async for chunk in chunks])
    assert body == b"chunk 0 of attempt 2;chunk 1 of attempt 2;chunk 2 of attempt 2;"
    assert control.key(key).attempts == 2


async def test_a_connection_cut_after_the_first_chunk_propagates(
    control: ControlServer, key: str, engine: str
) -> None:
    data = {"path": "/broken_stream", "params": {"key": key, "fail": 1, "sent": 1}}
    received = []
    async with _client(control, engine) as client:
        with pytest.raises(ConnectionError):
            async with client.stream(data, max_retries=3, retry_delay=0) as chunks:
                async for chunk in chunks:
                    received.append(chunk)  # noqa: PERF401 - what came before the error counts
    assert b"".join(received) == b"chunk 0 of attempt 1;"
    assert control.key(key).attempts == 1


async def test_aread_of_a_recovered_stream_includes_its_first_chunk(
    control: ControlServer, key: str, engine: str
) -> None:
    data = {"path": "/stream", "params": {"key": key, "chunks": 3, "size": 4}}
    async with _client(control, engine) as client:
        async with client.stream(data, max_retries=1) as chunks:
            body = await chunks.aread()
        async with client.stream({**data, "params": {"chunks": 0}}, max_retries=1) as empty:
            nothing = [chunk async for chunk in empty]
    assert body == b"\0\0\0\0\1\1\1\1\2\2\2\2"
    assert nothing == []


async def test_x_should_retry_true_makes_a_post_503_retryable(
    control: ControlServer, key: str, engine: str
) -> None:
    params = {"key": key, "fail": 1, "status": 503, "should_retry": "true"}
    async with _client(control, engine) as client:
        response = await client.request_with_retry(
            {"path": "/flaky", "method": "POST", "params": params}, max_retries=2, retry_delay=0
        )
    assert response.json() == {"attempt": 2}
    assert control.key(key).methods == ["POST", "POST"]


async def test_x_should_retry_false_makes_a_503_final(
    control: ControlServer, key: str, engine: str
) -> None:
    params = {"key": key, "fail": 1, "status": 503, "should_retry": "false"}
    async with _client(control, engine) as client:
        with pytest.raises(ServerError, match="x-should-retry: false") as caught:
            await client.request_with_retry(
                {"path": "/flaky", "params": params}, max_retries=2, retry_delay=0
            )
    assert caught.value.retryable is False
    assert control.key(key).attempts == 1


async def test_a_get_stream_that_timed_out_before_its_first_chunk_is_retried(
    control: ControlServer, key: str, engine: str
) -> None:
    data = {"path": "/slow", "params": {"key": key, "seconds": 0.5}}
    async with _client(control, engine) as client:
        with pytest.raises(TimeoutError):
            async with client.stream(data, timeout=0.2, max_retries=1, retry_delay=0):
                pass
    assert control.key(key).attempts == 2


async def test_stream_retries_are_charged_to_the_retry_budget(
    control: ControlServer, key: str, engine: str
) -> None:
    data = {"path": "/flaky", "params": {"key": key, "fail": 5, "status": 503}}
    spare = {"ratio": 0.0, "min_per_second": 0.1, "window": 10}  # one retry in the window
    config = {"retry_budget": spare}
    async with Pynector(
        transport_type="http", base_url=control.url, engine=engine, config=config
    ) as client:
        with pytest.raises(ServerError) as caught:
            async with client.stream(data, max_retries=4, retry_delay=0):
                pass
    assert caught.value.budget_exhausted
    assert control.key(key).attempts == 2  # the first attempt and the one retry the budget had
