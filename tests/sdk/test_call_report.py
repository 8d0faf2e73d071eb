"""What the SDK transport reports on each call, read by a per-client plugin.

The real openai and anthropic SDKs talk to the fake API; a plugin given to one
client (``Pynector(..., plugins=[...])``) keeps every :class:`pynector.Call` it
wrapped, as it was when the attempt ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import openai
import pytest

import pynector
from pynector import Call, Pynector, Usage
from pynector.errors import RateLimitError, TimeoutError
from pynector_sdk import SDKTransport
from pynector_sdk._cli import SDKCLISupport

from ._fake_api import CACHED, FakeAPI
from .conftest import API_KEY, SDK_STREAM_GENERATORS

pytestmark = pytest.mark.anyio

CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE: dict[str, Any] = {
    "model": "claude-test",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Capture:
    """Keeps each call it wrapped, once the attempt is over."""

    def __init__(self) -> None:
        self.calls: list[Call[Any]] = []

    @pynector.hookimpl
    def pynector_request(self, info: Call[Any]) -> AbstractContextManager[None]:
        return self._watch(info)

    @contextmanager
    def _watch(self, info: Call[Any]) -> Iterator[None]:
        try:
            yield
        finally:
            self.calls.append(info)

    @property
    def call(self) -> Call[Any]:
        (call,) = self.calls
        return call


class TraceHeaders:
    """A telemetry plugin's trace context (left out with ``enable_telemetry=False``)."""

    pynector_telemetry = True

    @pynector.hookimpl
    def pynector_headers(self, headers: dict[str, str]) -> None:
        headers["traceparent"] = TRACEPARENT


def client_for(provider: str, api: FakeAPI, *plugins: object, **options: Any) -> Pynector:
    base_url = api.url if provider == "openai" else api.root
    return Pynector(
        transport_type="sdk",
        provider=provider,
        api_key=API_KEY,
        base_url=base_url,
        plugins=list(plugins),
        **options,
    )


def request_for(provider: str, **extra: Any) -> dict[str, Any]:
    return {**(CHAT if provider == "openai" else MESSAGE), **extra}


def assert_no_secret(call: Call[Any]) -> None:
    assert API_KEY not in repr(call.attributes)
    assert API_KEY not in repr(call)
    assert API_KEY not in str(call.limit_key)


# -- usage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "operation", "expected"),
    [
        ("openai", "chat.completions.create", Usage(5, 2)),
        ("openai", "chat.completions.create", Usage(50, 20, 30, None, 12)),
        ("openai", "responses.create", Usage(50, 20, 30, None, 12)),
        ("anthropic", "messages.create", Usage(5, 2)),
        # Anthropic's input_tokens leaves out the cache: the input is all three.
        ("anthropic", "messages.create", Usage(55, 2, 40, 10, None)),
    ],
    ids=["openai-chat", "openai-chat-cached", "openai-responses", "anthropic", "anthropic-cached"],
)
async def test_the_replys_usage_is_reported_on_the_call(
    api: FakeAPI, provider: str, operation: str, expected: Usage
) -> None:
    capture = Capture()
    model = CACHED if expected.input_tokens > 5 else f"{provider}-model"
    data = request_for(provider, operation=operation, model=model)
    if operation == "responses.create":
        data = {"operation": operation, "model": model, "input": "Hi"}
    async with client_for(provider, api, capture) as client:
        await client.request(data)
    assert capture.call.usage == expected


async def test_an_embeddings_call_reports_its_input_tokens(api: FakeAPI) -> None:
    capture = Capture()
    async with client_for("openai", api, capture) as client:
        await client.request({"operation": "embeddings.create", "model": "e", "input": ["a", "b"]})
    assert capture.call.usage == Usage(6, 0)
    assert capture.call.span_name == "embeddings e"
    assert capture.call.attributes["gen_ai.operation.name"] == "embeddings"


async def test_a_call_whose_reply_has_no_usage_reports_none(api: FakeAPI) -> None:
    capture = Capture()
    async with client_for("anthropic", api, capture) as client:
        counted = await client.request({"operation": "messages.count_tokens", **CHAT})
    assert counted.input_tokens == 12
    assert capture.call.usage is None
    assert capture.call.status == 200


# -- what else a call reports --------------------------------------------------------------


async def test_an_openai_call_reports_server_status_url_key_span_and_attributes(
    api: FakeAPI,
) -> None:
    capture = Capture()
    data = {**CHAT, "max_tokens": 16, "temperature": 0.5, "stop": "x"}
    async with client_for("openai", api, capture) as client:
        await client.request(data)
    call = capture.call
    assert (call.server_address, call.server_port, call.status) == ("127.0.0.1", api.port, 200)
    assert call.url == f"{api.url}/chat/completions"
    assert call.limit_key == "sdk:openai:gpt-test"
    assert call.span_name == "chat gpt-test"
    assert call.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-test",
        "gen_ai.request.stream": False,
        "server.address": "127.0.0.1",
        "server.port": api.port,
        "gen_ai.request.max_tokens": 16,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.stop_sequences": ["x"],
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-test",
        "gen_ai.response.finish_reasons": ["stop"],
    }
    assert call.request_headers is not None
    assert call.response_headers is not None
    assert call.response_headers["content-type"] == "application/json"
    assert_no_secret(call)


async def test_an_anthropic_calls_gen_ai_usage_input_tokens_include_the_cached_parts(
    api: FakeAPI,
) -> None:
    capture = Capture()
    async with client_for("anthropic", api, capture) as client:
        await client.request({**MESSAGE, "model": CACHED, "stop_sequences": ["END"]})
    call = capture.call
    assert call.span_name == "chat cached"
    assert call.limit_key == "sdk:anthropic:cached"
    assert call.attributes["gen_ai.provider.name"] == "anthropic"
    assert call.attributes["gen_ai.request.stop_sequences"] == ["END"]
    # The API's input_tokens (5) leaves out the cached parts; the conventions count them.
    assert call.attributes["gen_ai.usage.input_tokens"] == 55
    assert call.attributes["gen_ai.usage.cache_read.input_tokens"] == 40
    assert call.attributes["gen_ai.usage.cache_creation.input_tokens"] == 10
    assert call.attributes["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert call.usage is not None
    assert call.usage.input_tokens == 55
    assert_no_secret(call)


@pytest.mark.parametrize("own_http_client", [False, True], ids=["sdk-client", "own-client"])
async def test_a_failed_call_reports_the_http_status_of_the_sdk_error(
    api: FakeAPI, own_http_client: bool
) -> None:
    # With the caller's own http_client there is no response hook: the status
    # comes from the translated error.
    capture = Capture()
    options: dict[str, Any] = {"http_client": openai.DefaultAsyncHttpxClient()}
    api.fail("/v1/chat/completions", 429, headers={"retry-after": "0"})
    async with client_for("openai", api, capture, **(options if own_http_client else {})) as client:
        with pytest.raises(RateLimitError):
            await client.request(CHAT)
    call = capture.call
    assert call.status == 429
    assert call.usage is None
    assert call.span_name == "chat gpt-test"
    assert call.limit_key == "sdk:openai:gpt-test"
    assert "gen_ai.usage.input_tokens" not in call.attributes


async def test_every_attempt_is_its_own_call(api: FakeAPI) -> None:
    capture = Capture()
    api.fail("/v1/messages", 529)
    async with client_for("anthropic", api, capture) as client:
        await client.request_with_retry(MESSAGE, max_retries=1, retry_delay=0)
    assert [(c.attempt, c.status) for c in capture.calls] == [(1, 529), (2, 200)]
    assert [c.usage for c in capture.calls] == [None, Usage(5, 2)]


async def test_a_call_cut_short_by_the_clients_deadline_is_not_sent_again(api: FakeAPI) -> None:
    async with client_for("openai", api) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.request_with_retry({**CHAT, "model": "hold"}, max_retries=2, timeout=0.3)
    assert caught.value.retryable is False
    assert api.count() == 1


# -- streams -------------------------------------------------------------------------------


@SDK_STREAM_GENERATORS
@pytest.mark.parametrize(
    ("provider", "data", "expected"),
    [
        (
            "openai",
            {**CHAT, "model": CACHED, "stream_options": {"include_usage": True}},
            Usage(50, 20, 30, None, 12),
        ),
        ("openai", CHAT, None),  # no usage asked for: none seen
        (
            "openai",
            {"operation": "responses.create", "model": "r", "input": "Hi"},
            Usage(5, 2, 0, None, 0),
        ),
        ("anthropic", {**MESSAGE, "model": CACHED}, Usage(55, 2, 40, 10, None)),
        ("anthropic", {**MESSAGE, "operation": "messages.stream"}, Usage(5, 2)),
    ],
    ids=[
        "openai-include-usage",
        "openai-plain",
        "openai-responses",
        "anthropic",
        "anthropic-helper",
    ],
)
async def test_a_stream_reports_the_usage_its_events_carried(
    api: FakeAPI, provider: str, data: dict[str, Any], expected: Usage | None
) -> None:
    capture = Capture()
    async with client_for(provider, api, capture) as client:
        async with client.stream(data) as events:
            async for _event in events:
                pass
    call = capture.call
    assert call.streaming is True
    assert call.usage == expected
    assert call.status == 200
    assert call.span_name is not None
    assert call.span_name.startswith("chat ")
    if expected is not None:
        assert call.attributes["gen_ai.usage.output_tokens"] == expected.output_tokens


# -- the limit key and the token estimate ------------------------------------------------------


def test_the_limit_key_names_the_provider_and_the_model_and_no_secret() -> None:
    transport = SDKTransport("openai", api_key=API_KEY, base_url="http://u:pw@127.0.0.1:9/v1")
    assert transport.limit_key(Call({"model": "gpt-4o"})) == "sdk:openai:gpt-4o"
    assert transport.limit_key(Call({"messages": []}, {"model": "mini"})) == "sdk:openai:mini"
    assert transport.limit_key(Call({"model": "data"}, {"model": "option"})) == "sdk:openai:data"
    assert transport.limit_key(Call({"operation": "models.list"})) == "sdk:openai"
    anthropic = SDKTransport("anthropic", api_key=API_KEY)
    assert anthropic.limit_key(Call(MESSAGE)) == "sdk:anthropic:claude-test"


def test_the_token_estimate_is_the_prompt_plus_the_output_allowance() -> None:
    transport = SDKTransport("anthropic", api_key=API_KEY)
    data = {"model": "m", "messages": [{"role": "user", "content": "abcdefgh"}], "max_tokens": 100}
    assert transport.estimate_tokens(Call(data)) == 2 + 100
    # Options count as the call's arguments (the data wins on a clash).
    assert transport.estimate_tokens(Call(data, {"max_tokens": 7})) == 2 + 100
    bare = {"messages": data["messages"]}
    assert transport.estimate_tokens(Call(bare, {"max_tokens": 7, "n": 3})) == 2 + 21
    # The command line's --tpm reads the same estimate.
    assert SDKCLISupport().estimate_tokens({**data, "n": 2}) == 2 + 200
    assert transport.estimate_tokens(Call({**data, "n": 2})) == 2 + 200


def test_an_sdk_call_is_never_replayable() -> None:
    transport = SDKTransport("openai", api_key=API_KEY)
    assert transport.replayable(Call(CHAT)) is False
    assert transport.handles_deadline is False


# -- trace headers -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_trace_headers_join_the_call_when_telemetry_is_on(
    api: FakeAPI, provider: str
) -> None:
    async with client_for(provider, api, TraceHeaders()) as client:
        await client.request(request_for(provider))
    assert api.last().headers["traceparent"] == TRACEPARENT


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("where", ["client", "transport"])
async def test_no_trace_headers_with_enable_telemetry_false(
    api: FakeAPI, provider: str, where: str
) -> None:
    base_url = api.url if provider == "openai" else api.root
    if where == "client":
        client = client_for(provider, api, TraceHeaders(), enable_telemetry=False)
    else:
        transport = SDKTransport(
            provider, api_key=API_KEY, base_url=base_url, enable_telemetry=False
        )
        client = Pynector(transport=transport, plugins=[TraceHeaders()])
    async with client:
        await client.request(request_for(provider))
    assert "traceparent" not in api.last().headers
    assert api.count() == 1
