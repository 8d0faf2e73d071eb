"""The SDKs' own retry rules, kept with their retries off; streams that recover.

The real openai and anthropic SDKs against the fake API: what is retried is
counted from the server's side, with the ``x-stainless-retry-count`` header
each attempt carried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pynector import Pynector
from pynector.errors import BadRequestError, ConflictError, SDKError, ServerError

from ._fake_api import FakeAPI
from .conftest import SDK_STREAM_GENERATORS, anthropic_client, openai_client

pytestmark = [pytest.mark.anyio, SDK_STREAM_GENERATORS]

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "model": "claude-test",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}
RETRY_COUNT = "x-stainless-retry-count"

Factory = Callable[..., Pynector]
PROVIDERS = pytest.mark.parametrize(
    ("factory", "path", "data"),
    [
        (openai_client, "/v1/chat/completions", CHAT),
        (anthropic_client, "/v1/messages", MESSAGE),
    ],
    ids=["openai", "anthropic"],
)


@PROVIDERS
async def test_retries_carry_the_sdks_retry_count(
    api: FakeAPI, factory: Factory, path: str, data: dict[str, Any]
) -> None:
    api.fail(path, 503, times=2)
    async with factory(api) as client:
        await client.request_with_retry(data, max_retries=3, retry_delay=0)
    assert api.headers_of(path, RETRY_COUNT) == ["0", "1", "2"]


@PROVIDERS
async def test_a_409_lock_timeout_is_retried(
    api: FakeAPI, factory: Factory, path: str, data: dict[str, Any]
) -> None:
    api.fail(path, 409)
    async with factory(api) as client:
        await client.request_with_retry(data, max_retries=2, retry_delay=0)
        api.fail(path, 409)
        with pytest.raises(ConflictError) as caught:
            await client.request(data)
    assert caught.value.retryable is True
    assert api.count(path) == 3


@PROVIDERS
async def test_x_should_retry_false_makes_a_503_final(
    api: FakeAPI, factory: Factory, path: str, data: dict[str, Any]
) -> None:
    api.fail(path, 503, headers={"x-should-retry": "false"}, times=3)
    async with factory(api) as client:
        with pytest.raises(ServerError) as caught:
            await client.request_with_retry(data, max_retries=3, retry_delay=0)
    assert caught.value.retryable is False
    assert api.count(path) == 1


@PROVIDERS
async def test_x_should_retry_true_makes_a_400_retryable(
    api: FakeAPI, factory: Factory, path: str, data: dict[str, Any]
) -> None:
    api.fail(path, 400, headers={"x-should-retry": "true"})
    async with factory(api) as client:
        await client.request_with_retry(data, max_retries=2, retry_delay=0)
        api.fail(path, 400)
        with pytest.raises(BadRequestError) as caught:  # without the header: final
            await client.request_with_retry(data, max_retries=2, retry_delay=0)
    assert caught.value.retryable is False
    assert api.headers_of(path, RETRY_COUNT) == ["0", "1", "0"]


async def test_a_retry_after_beyond_two_minutes_is_not_waited_for(api: FakeAPI) -> None:
    # The openai SDK's bound, now the client's default retry_after_max.
    api.fail("/v1/chat/completions", 429, headers={"retry-after": "121"})
    async with openai_client(api) as client:
        assert client.config.retry_after_max == 120.0
        with pytest.raises(Exception, match="429") as caught:
            await client.request_with_retry(CHAT, max_retries=3, retry_delay=0)
    assert caught.value.retry_after == 121  # type: ignore[attr-defined]
    assert api.count() == 1


# -- streams that recover ---------------------------------------------------------------


async def test_an_overloaded_error_event_before_content_reopens_the_stream(
    api: FakeAPI,
) -> None:
    api.fail_stream("/v1/messages", "overloaded_error", times=2)
    async with anthropic_client(api) as client:
        async with client.stream(MESSAGE, max_retries=3, retry_delay=0) as events:
            kinds = [event.type async for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert api.headers_of("/v1/messages", RETRY_COUNT) == ["0", "1", "2"]


async def test_an_error_chunk_before_content_reopens_an_openai_stream(api: FakeAPI) -> None:
    api.fail_stream("/v1/chat/completions", "server_error")
    async with openai_client(api) as client:
        async with client.stream(CHAT, max_retries=1, retry_delay=0) as events:
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in events])
    assert text == "Hello!"
    assert api.headers_of("/v1/chat/completions", RETRY_COUNT) == ["0", "1"]


async def test_an_in_stream_error_of_a_final_type_is_not_retried(api: FakeAPI) -> None:
    api.fail_stream("/v1/messages", "invalid_request_error")
    async with anthropic_client(api) as client:
        with pytest.raises(SDKError) as caught:
            async with client.stream(MESSAGE, max_retries=3, retry_delay=0):
                pass
    assert caught.value.retryable is False
    assert api.count("/v1/messages") == 1


async def test_an_overload_after_message_start_is_still_retried(api: FakeAPI) -> None:
    async with anthropic_client(api) as client:
        with pytest.raises(SDKError, match="reported an error") as caught:
            # "stream-error": message_start (no content yet), then an overloaded_error event.
            async with client.stream(
                {**MESSAGE, "model": "stream-error"}, max_retries=2, retry_delay=0
            ):
                pytest.fail("the block is entered only once content has arrived")
    assert caught.value.retryable is True
    assert api.count("/v1/messages") == 3  # retried: nothing had been shown to the caller
    assert api.headers_of("/v1/messages", RETRY_COUNT) == ["0", "1", "2"]


async def test_an_overload_after_content_propagates(api: FakeAPI) -> None:
    received = []
    async with anthropic_client(api) as client:
        with pytest.raises(SDKError, match="reported an error") as caught:
            # "late-error": message_start, an empty text block, a text delta, then the error.
            async with client.stream(
                {**MESSAGE, "model": "late-error"}, max_retries=3, retry_delay=0
            ) as events:
                async for event in events:
                    received.append(event.type)  # noqa: PERF401 - the events before the error
    assert caught.value.retryable is True  # worth retrying, but content was already read
    assert received == ["message_start", "content_block_start", "content_block_delta"]
    assert api.count("/v1/messages") == 1


async def test_a_stream_answered_529_is_opened_again(api: FakeAPI) -> None:
    api.fail("/v1/messages", 529)
    async with anthropic_client(api) as client:
        async with client.stream(MESSAGE, max_retries=1, retry_delay=0) as events:
            assert events.attempts == 2
            assert events.sdk_stream is not None  # the SDK's stream, as without retries
            kinds = [event.type async for event in events]
    assert len(kinds) == 7
    assert api.headers_of("/v1/messages", RETRY_COUNT) == ["0", "1"]


async def test_a_stream_that_timed_out_before_its_first_event_is_not_sent_again(
    api: FakeAPI,
) -> None:
    async with anthropic_client(api) as client:
        with pytest.raises(TimeoutError) as caught:
            # "hold": the API does not answer; the call may still be billed.
            async with client.stream(
                {**MESSAGE, "model": "hold"}, timeout=0.3, max_retries=3, retry_delay=0
            ):
                pass
    assert caught.value.retryable is False  # type: ignore[attr-defined]
    assert api.count("/v1/messages") == 1
