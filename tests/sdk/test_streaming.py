"""Streams: the SDKs' own events over SSE, closed when the block is left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import anyio
import pytest

import pynector
from pynector import Pynector
from pynector.errors import ConfigurationError, SDKError, ServerError, TimeoutError
from pynector.hookspecs import RequestInfo
from pynector_sdk import EventStream

from ._fake_api import FakeAPI
from .conftest import API_KEY, SDK_STREAM_GENERATORS, anthropic_client, openai_client

pytestmark = [pytest.mark.anyio, SDK_STREAM_GENERATORS]

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "model": "claude-test",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}


async def test_openai_chat_stream_yields_the_sdks_chunks(api: FakeAPI) -> None:
    async with openai_client(api) as client:
        async with client.stream(CHAT) as events:
            chunks = [chunk async for chunk in events]
    assert [type(c).__name__ for c in chunks] == ["ChatCompletionChunk"] * 4
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello!"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert api.count() == 1
    assert api.last().body == {**CHAT, "stream": True}


async def test_openai_responses_stream_yields_typed_events(api: FakeAPI) -> None:
    async with openai_client(api) as client:
        data = {"operation": "responses.create", "model": "gpt-test", "input": "Hi"}
        async with client.stream(data) as events:
            kinds = [event.type async for event in events]
    assert kinds == [
        "response.created",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.completed",
    ]


async def test_anthropic_message_stream_yields_the_raw_events(api: FakeAPI) -> None:
    async with anthropic_client(api) as client:
        async with client.stream(MESSAGE) as events:
            received = [event async for event in events]
    assert [e.type for e in received] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    text = "".join(e.delta.text for e in received if e.type == "content_block_delta")
    assert text == "Hello!"
    assert api.last().body == {**MESSAGE, "stream": True}


async def test_openai_stream_helper_is_entered_as_a_stream_manager(api: FakeAPI) -> None:
    async with openai_client(api) as client:
        async with client.stream({"operation": "chat.completions.stream", **CHAT}) as events:
            deltas = [event.delta async for event in events if event.type == "content.delta"]
    assert "".join(deltas) == "Hello!"
    assert api.count() == 1


async def test_anthropic_stream_helper_is_entered_as_a_stream_manager(api: FakeAPI) -> None:
    async with anthropic_client(api) as client:
        async with client.stream({"operation": "messages.stream", **MESSAGE}) as events:
            texts = [event.text async for event in events if event.type == "text"]
    assert "".join(texts) == "Hello!"
    assert api.count() == 1


async def test_plugins_see_the_stream_and_the_sdks_http_response(api: FakeAPI) -> None:
    seen: list[object] = []

    class Spy:
        @pynector.hookimpl
        def pynector_request(self, info: RequestInfo) -> AbstractContextManager[None]:
            return self._watch(info)

        @contextmanager
        def _watch(self, info: RequestInfo) -> Iterator[None]:
            yield
            seen.append(info.result)

    async with anthropic_client(api, plugins=[Spy()]) as client:
        async with client.stream(MESSAGE) as events:
            async for _event in events:
                pass
    (stream,) = seen
    assert isinstance(stream, EventStream)
    assert stream.sdk_stream.response.status_code == 200


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_leaving_a_stream_early_closes_the_sdk_stream(api: FakeAPI, provider: str) -> None:
    # "endless" streams a few events, then holds the response open until the
    # client hangs up: the server sees the hang-up only if the stream was closed.
    factory, data = (openai_client, CHAT) if provider == "openai" else (anthropic_client, MESSAGE)
    async with factory(api) as client:
        with anyio.fail_after(30):
            async with client.stream({**data, "model": "endless"}) as events:
                async for _event in events:
                    break
            assert await anyio.to_thread.run_sync(api.stream_closed.wait, 30)
            # The connection pool is healthy afterwards.
            assert (await client.request(data)).model == data["model"]


async def test_a_stream_deadline_expires_as_a_timeout_and_closes_the_stream(api: FakeAPI) -> None:
    async with anthropic_client(api) as client:
        with pytest.raises(TimeoutError):
            async with client.stream({**MESSAGE, "model": "endless"}, timeout=0.5) as events:
                async for _event in events:
                    pass
        assert await anyio.to_thread.run_sync(api.stream_closed.wait, 30)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_error_event_inside_a_stream_is_an_sdk_error(api: FakeAPI, provider: str) -> None:
    factory, data = (openai_client, CHAT) if provider == "openai" else (anthropic_client, MESSAGE)
    async with factory(api) as client:
        received = []
        with pytest.raises(SDKError, match="reported an error") as caught:
            async with client.stream({**data, "model": "stream-error"}) as events:
                async for event in events:
                    received.append(event)  # noqa: PERF401 - the events before the error count
    assert len(received) == 1
    # Both are transient types (server_error / overloaded_error): worth retrying.
    assert caught.value.retryable is True
    assert caught.value.__cause__ is not None


async def test_a_stream_that_fails_to_open_raises_the_mapped_error(api: FakeAPI) -> None:
    api.fail("/v1/messages", 529)
    async with anthropic_client(api) as client:
        with pytest.raises(ServerError) as caught:
            async with client.stream(MESSAGE):
                pass
    assert caught.value.status_code == 529
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "data",
    [{"operation": "embeddings.create", "model": "e", "input": "x"}, {"operation": "models.list"}],
    ids=["embeddings", "list"],
)
async def test_an_operation_that_cannot_stream_is_refused(
    api: FakeAPI, data: dict[str, object]
) -> None:
    async with openai_client(api) as client:
        with pytest.raises(ConfigurationError, match="does not stream"):
            async with client.stream(data):
                pass
    assert api.count() == 0


@pytest.mark.parametrize(
    "data",
    [{**CHAT, "stream": True}, {"operation": "messages.stream", **MESSAGE}],
    ids=["stream-true", "stream-helper"],
)
async def test_request_refuses_streaming_calls_and_points_to_stream(
    api: FakeAPI, data: dict[str, object]
) -> None:
    provider = "anthropic" if data.get("operation") == "messages.stream" else "openai"
    base_url = api.root if provider == "anthropic" else api.url
    async with Pynector(
        transport_type="sdk", provider=provider, api_key=API_KEY, base_url=base_url
    ) as client:
        with pytest.raises(ConfigurationError, match=r"client\.stream"):
            await client.request(data)
    assert api.count() == 0
