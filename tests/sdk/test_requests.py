"""Requests through the real openai and anthropic SDKs to the fake API, on asyncio and trio."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import pynector
from pynector import Pynector
from pynector.errors import RateLimitError, ServerError
from pynector_sdk import SDKTransport

from ._fake_api import EMBEDDING, FakeAPI
from .conftest import API_KEY, anthropic_client, openai_client

pytestmark = pytest.mark.anyio

CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "model": "claude-test",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}


async def test_openai_chat_completion_is_the_default_operation_and_one_http_call(
    api: FakeAPI,
) -> None:
    async with openai_client(api) as client:
        completion = await client.request(CHAT)
    assert completion.choices[0].message.content == "Hello!"
    assert completion.model == "gpt-test"
    assert completion.usage.prompt_tokens == 5
    assert api.count() == 1
    sent = api.last()
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.body == CHAT
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"


async def test_openai_embeddings_operation(api: FakeAPI) -> None:
    async with openai_client(api) as client:
        result = await client.request(
            {"operation": "embeddings.create", "model": "embed-test", "input": ["a", "b"]}
        )
    assert [item.embedding for item in result.data] == [EMBEDDING, EMBEDDING]
    assert result.usage.prompt_tokens == 6
    assert api.count("/v1/embeddings") == 1
    assert "operation" not in api.last().body


async def test_openai_responses_operation(api: FakeAPI) -> None:
    async with openai_client(api) as client:
        response = await client.request(
            {"operation": "responses.create", "model": "gpt-test", "input": "Hi"}
        )
    assert response.output_text == "Hello!"
    assert response.usage.input_tokens == 5
    assert api.count("/v1/responses") == 1


async def test_anthropic_message_is_the_default_operation_and_one_http_call(
    api: FakeAPI,
) -> None:
    async with anthropic_client(api) as client:
        message = await client.request(MESSAGE)
    assert message.content[0].text == "Hello!"
    assert message.usage.input_tokens == 5
    assert message.usage.output_tokens == 2
    assert api.count() == 1
    assert (api.last().path, api.last().body) == ("/v1/messages", MESSAGE)


async def test_anthropic_count_tokens_operation(api: FakeAPI) -> None:
    async with anthropic_client(api) as client:
        count = await client.request(
            {"operation": "messages.count_tokens", "model": "claude-test", "messages": []}
        )
    assert count.input_tokens == 12
    assert api.count("/v1/messages/count_tokens") == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_list_operations_return_the_first_page(api: FakeAPI, provider: str) -> None:
    factory = openai_client if provider == "openai" else anthropic_client
    async with factory(api) as client:
        page = await client.request({"operation": "models.list"})
    assert [model.id for model in page.data] == [
        "gpt-test" if provider == "openai" else "claude-test"
    ]
    assert (api.last().method, api.last().path) == ("GET", "/v1/models")


async def test_batch_options_are_shared_call_arguments_as_documented(api: FakeAPI) -> None:
    api.fail("/v1/chat/completions", 503)
    questions = ["What is 2 + 2?", "Name a prime.", "Capital of France?"]
    requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"messages": [{"role": "user", "content": q}]}, {}) for q in questions
    ]
    async with openai_client(api) as client:
        results = await client.batch_request(
            requests, max_concurrency=8, model="gpt-4o-mini", max_retries=2
        )
    assert [r.model for r in results if not isinstance(r, Exception)] == ["gpt-4o-mini"] * 3
    assert api.count() == 4  # one 503, retried once


async def test_any_openai_compatible_server_works_through_base_url(api: FakeAPI) -> None:
    # A self-hosted server with its own model name and no OpenAI account.
    async with Pynector(
        transport_type="sdk", provider="openai", api_key="local-key", base_url=api.url
    ) as client:
        completion = await client.request({**CHAT, "model": "llama-3-8b-instruct"})
    assert completion.model == "llama-3-8b-instruct"
    assert api.last().headers["host"] == f"127.0.0.1:{api.port}"


async def test_request_options_are_more_call_arguments_and_data_wins(api: FakeAPI) -> None:
    async with openai_client(api) as client:
        await client.request(CHAT, temperature=0.5, model="ignored", extra_headers={"x-a": "1"})
    sent = api.last()
    assert sent.body["temperature"] == 0.5
    assert sent.body["model"] == "gpt-test"
    assert sent.headers["x-a"] == "1"


async def test_request_with_retry_makes_exactly_three_http_calls_for_two_retries(
    api: FakeAPI,
) -> None:
    api.fail("/v1/chat/completions", 500, times=10)
    async with openai_client(api) as client:
        with pytest.raises(ServerError) as caught:
            await client.request_with_retry(CHAT, max_retries=2, retry_delay=0.01)
    assert api.count("/v1/chat/completions") == 3
    assert caught.value.status_code == 500


async def test_request_with_retry_honours_retry_after_ms_and_then_succeeds(api: FakeAPI) -> None:
    api.fail("/v1/messages", 429, headers={"retry-after-ms": "20"}, times=2)
    async with anthropic_client(api) as client:
        message = await client.request_with_retry(MESSAGE, max_retries=2, retry_delay=30)
    # retry_delay=30 would have timed the test out: the server's 20 ms wait replaced it.
    assert message.content[0].text == "Hello!"
    assert api.count("/v1/messages") == 3


async def test_a_rate_limit_without_retries_is_one_http_call(api: FakeAPI) -> None:
    api.fail("/v1/chat/completions", 429, headers={"retry-after": "7"})
    async with openai_client(api) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.request(CHAT)
    assert caught.value.retry_after == 7.0
    assert api.count() == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_batch_request_returns_results_in_order_with_failures_in_their_slots(
    api: FakeAPI, provider: str
) -> None:
    path = "/v1/chat/completions" if provider == "openai" else "/v1/messages"
    factory = openai_client if provider == "openai" else anthropic_client
    base = CHAT if provider == "openai" else MESSAGE
    api.fail(path, 404)
    requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({**base, "model": f"model-{i}"}, {}) for i in range(6)
    ]
    async with factory(api) as client:
        results = await client.batch_request(requests, max_concurrency=3)
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1
    assert isinstance(failures[0], pynector.errors.NotFoundError)
    for index, result in enumerate(results):
        if not isinstance(result, Exception):
            assert result.model == f"model-{index}"
    assert api.count(path) == 6
    assert api.max_in_flight <= 3


async def test_batch_request_mixes_operations(api: FakeAPI) -> None:
    requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (CHAT, {}),
        ({"operation": "embeddings.create", "model": "e", "input": "x"}, {}),
        ({"operation": "responses.create", "model": "r", "input": "x"}, {}),
    ]
    async with openai_client(api) as client:
        results = await client.batch_request(requests, raise_on_error=True)
    replies = [r for r in results if not isinstance(r, Exception)]
    assert [r.object for r in replies] == ["chat.completion", "list", "response"]


async def test_max_connections_sizes_the_sdk_connection_pool(api: FakeAPI) -> None:
    transport = SDKTransport("openai", api_key=API_KEY, base_url=api.url, max_connections=2)
    results: list[object] = []

    async def one() -> None:
        results.append(await transport.request({**CHAT, "model": "hold"}))

    async with transport:
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one)
            assert await anyio.to_thread.run_sync(api.wait_in_flight, 2)
            api.release()
    assert len(results) == 6
    assert api.max_in_flight <= 2
    assert len({r.peer_port for r in api.requests}) <= 2


async def test_the_client_passes_config_max_connections_to_the_transport(api: FakeAPI) -> None:
    async with openai_client(api, config={"max_connections": 3}) as client:
        pool = client.transport.sdk_client._client._transport._pool
        assert pool._max_connections == 3


async def test_plugins_headers_join_each_sdk_call_and_the_callers_win(api: FakeAPI) -> None:
    class TraceHeaders:
        @pynector.hookimpl
        def pynector_headers(self, headers: dict[str, str]) -> None:
            headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            headers["x-mine"] = "plugin"

    async with openai_client(api, plugins=[TraceHeaders()]) as client:
        await client.request({**CHAT, "extra_headers": {"x-mine": "caller"}})
    sent = api.last().headers
    assert sent["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert sent["x-mine"] == "caller"


async def test_the_transport_works_on_its_own(api: FakeAPI) -> None:
    async with SDKTransport("anthropic", api_key=API_KEY, base_url=api.root) as transport:
        direct = await transport.request(MESSAGE)
        counted = await transport.request({"operation": "messages.count_tokens", **CHAT})
    assert direct.content[0].text == "Hello!"
    assert counted.input_tokens == 12
    assert api.count() == 2
    assert not hasattr(transport, "send")
    assert not hasattr(transport, "receive")


async def test_a_disconnected_transport_reconnects_on_connect(api: FakeAPI) -> None:
    transport = SDKTransport("openai", api_key=API_KEY, base_url=api.url)
    await transport.disconnect()
    await transport.disconnect()  # twice is fine
    assert "state=closed" in repr(transport)
    with pytest.raises(pynector.errors.TransportError, match="connect"):
        await transport.request(CHAT)
    await transport.connect()
    try:
        assert (await transport.request(CHAT)).object == "chat.completion"
    finally:
        await transport.aclose()
    assert api.count() == 1


async def test_a_custom_transport_instance_reports_sdk_to_plugins(api: FakeAPI) -> None:
    seen: list[str] = []

    class Spy:
        @pynector.hookimpl
        def pynector_request(self, info: pynector.hookspecs.RequestInfo) -> None:
            seen.append(f"{info.transport_type}:{info.transport.provider}")

    transport = SDKTransport("openai", api_key=API_KEY, base_url=api.url)
    async with Pynector(transport=transport, plugins=[Spy()]) as client:
        await client.request(CHAT)
    assert seen == ["sdk:openai"]
