"""GenAI semantic conventions for ``sdk`` calls.

Two ways in: pynector-sdk's real transport, driving the real OpenAI and
Anthropic SDKs against the loopback server; and, for the many reply shapes, the
SDKs' real response types returned by a small full transport that reports on
the call what pynector-sdk's transport reports (with pynector-sdk's own
semantic-conventions functions), so the plugin is tested on what it reads.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from pynector import Call, Pynector
from pynector.errors import RateLimitError
from pynector.transport.protocol import CallTransport
from pynector_sdk._semconv import reply_report, request_attributes, server_of

from .conftest import LLM_REPLIES, Server, Telemetry, traceparent_of

PROMPT = "Translate 'hello' into French, secret-prompt-4417"
ANSWER = "Bonjour, secret-answer-9931"

CHAT = ChatCompletion.model_validate(
    {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": ANSWER},
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
)
MESSAGE = Message.model_validate(
    {
        "id": "msg_123",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": ANSWER}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 4},
    }
)
EMBEDDING = CreateEmbeddingResponse.model_validate(
    {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.25, 0.5]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
)


class SDKLike(CallTransport[dict[str, Any], Any]):
    """A full transport that answers with a canned SDK reply, reporting as pynector-sdk does."""

    transport_type = "sdk"

    def __init__(self, provider: str, reply: Any, default_operation: str) -> None:
        self.provider = provider
        self.base_url = {
            "openai": "https://api.openai.com/v1/",
            "anthropic": "https://api.anthropic.com",
        }[provider]
        self.default_operation = default_operation
        self.reply = reply
        self.calls: list[Any] = []

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def handle_request(self, call: Call[dict[str, Any]]) -> Any:
        data = call.data
        self.calls.append(data)
        operation = data.get("operation") or self.default_operation
        request = {key: value for key, value in data.items() if key != "operation"}
        call.span_name, attributes = request_attributes(
            request, operation, self.provider, server_of(self.base_url)
        )
        call.attributes.update(attributes)
        if isinstance(self.reply, Exception):
            raise self.reply
        call.usage, attributes = reply_report(self.reply)
        call.attributes.update(attributes)
        return self.reply


def openai(reply: Any = CHAT) -> SDKLike:
    return SDKLike("openai", reply, "chat.completions.create")


def anthropic(reply: Any = MESSAGE) -> SDKLike:
    return SDKLike("anthropic", reply, "messages.create")


def chat_request(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": PROMPT}],
        **extra,
    }


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.mark.anyio
async def test_an_openai_chat_call_gets_one_genai_span(otel: Telemetry) -> None:
    async with Pynector(transport=openai()) as client:
        reply = await client.request(chat_request(max_tokens=50, temperature=0.2, stop=["\n"]))
    assert reply is CHAT
    (span,) = otel.spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attributes(span) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.stream": False,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.stop_sequences": ("\n",),
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.response.id": "chatcmpl-123",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ("stop",),
        "pynector.transport": "sdk",
        "pynector.attempt": 1,
    }


@pytest.mark.anyio
async def test_an_anthropic_messages_call_gets_one_genai_span(otel: Telemetry) -> None:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": "Be brief",
        "messages": [{"role": "user", "content": PROMPT}],
    }
    async with Pynector(transport=anthropic()) as client:
        await client.request(request)
    (span,) = otel.spans()
    assert span.name == "chat claude-sonnet-4-5"
    found = attributes(span)
    assert found["gen_ai.provider.name"] == "anthropic"
    assert found["gen_ai.operation.name"] == "chat"
    assert found["gen_ai.request.max_tokens"] == 100
    assert found["gen_ai.usage.input_tokens"] == 10
    assert found["gen_ai.usage.output_tokens"] == 4
    assert found["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert found["server.address"] == "api.anthropic.com"


@pytest.mark.anyio
async def test_other_operations_are_named_by_the_conventions(otel: Telemetry) -> None:
    async with Pynector(transport=openai(EMBEDDING)) as client:
        await client.request(
            {"operation": "embeddings.create", "model": "text-embedding-3-small", "input": "hi"}
        )
    (span,) = otel.spans()
    assert span.name == "embeddings text-embedding-3-small"
    found = attributes(span)
    assert found["gen_ai.operation.name"] == "embeddings"
    assert found["gen_ai.usage.input_tokens"] == 5
    assert "gen_ai.usage.output_tokens" not in found


@pytest.mark.anyio
async def test_message_content_is_not_recorded_by_default(otel: Telemetry) -> None:
    async with Pynector(transport=anthropic()) as client:
        await client.request({**chat_request(), "system": "Be brief, secret-system-5120"})
    exported = otel.everything()
    assert exported
    for secret in (PROMPT, ANSWER, "secret-system-5120"):
        assert secret not in exported
    assert not any(key.endswith("messages") for key in attributes(otel.spans()[0]))


@pytest.mark.anyio
async def test_message_content_is_recorded_when_the_user_opts_in(otel: Telemetry) -> None:
    otel.plugin.configure(capture_message_content=True)
    async with Pynector(transport=anthropic()) as client:
        await client.request({**chat_request(), "system": "Be brief"})
    found = attributes(otel.spans()[0])
    assert json.loads(found["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert json.loads(found["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief"}
    ]
    assert json.loads(found["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": ANSWER}],
            "finish_reason": "end_turn",
        }
    ]


@pytest.mark.anyio
async def test_the_standard_environment_variable_opts_in_too(
    otel: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    otel.plugin.configure()
    async with Pynector(transport=openai()) as client:
        await client.request(chat_request())
    output = json.loads(attributes(otel.spans()[0])["gen_ai.output.messages"])
    assert output == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": ANSWER}],
            "finish_reason": "stop",
        }
    ]


@pytest.mark.anyio
async def test_a_failed_sdk_call_records_the_error_class(otel: Telemetry) -> None:
    error = RateLimitError("rate limited by the provider", status_code=429)
    async with Pynector(transport=openai(error)) as client:
        with pytest.raises(RateLimitError):
            await client.request(chat_request())
    (span,) = otel.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == "pynector.errors.RateLimitError"
    assert attributes(span)["gen_ai.request.model"] == "gpt-4o-mini"


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_sdk_transport_call_gets_exactly_one_span(
    otel: Telemetry, server: Server, provider: str
) -> None:
    api_key = f"sk-{provider}-secret-3391"
    base_url = f"{server.url}/v1" if provider == "openai" else server.url
    request = chat_request(max_tokens=20)
    async with Pynector(
        transport_type="sdk", provider=provider, base_url=base_url, api_key=api_key
    ) as client:
        reply = await client.request(request)
    reply_id = LLM_REPLIES["completions" if provider == "openai" else "messages"]["id"]
    assert reply.id == reply_id
    (span,) = otel.spans()
    (received,) = server.received
    assert received.headers["traceparent"] == traceparent_of(span)
    found = attributes(span)
    assert span.name == "chat gpt-4o-mini"
    assert found["gen_ai.provider.name"] == provider
    assert found["gen_ai.operation.name"] == "chat"
    assert found["gen_ai.request.model"] == "gpt-4o-mini"
    assert found["gen_ai.request.max_tokens"] == 20
    assert found["gen_ai.response.id"] == reply_id
    assert found["gen_ai.usage.input_tokens"] == (7 if provider == "openai" else 8)
    assert found["gen_ai.usage.output_tokens"] == (2 if provider == "openai" else 3)
    assert found["server.address"] == "127.0.0.1"
    assert found["server.port"] == int(server.url.rpartition(":")[2])
    assert api_key in repr(received.headers)
    assert api_key not in otel.everything()
    assert PROMPT not in otel.everything()
