"""Spans against the semantic conventions, with the semantic-conventions package as the oracle.

Every attribute name pynector records outside its own ``pynector.*`` namespace
must be one the conventions define; and the points of the HTTP and GenAI
conventions that are easy to get wrong: known methods, status for replies
below 400, cached tokens, output type, OpenAI's attributes, streamed usage and
finish reasons, tool calls in captured messages, the capture modes.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from opentelemetry import semconv
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv.schemas import Schemas
from opentelemetry.trace import StatusCode
from pydantic import TypeAdapter

from pynector import Pynector
from pynector.errors import HTTPStatusError
from pynector_otel._plugin import CAPTURE_CONTENT_ENV
from pynector_sdk._semconv import StreamUsage, reply_attributes, request_attributes

from .conftest import Server, Telemetry, traceparent_of
from .test_genai import SDKLike, anthropic, chat_request, openai


def _defined_names() -> frozenset[str]:
    """Every attribute name in the semantic-conventions package (stable and incubating)."""
    names: set[str] = set()
    for package in (
        "opentelemetry.semconv.attributes",
        "opentelemetry.semconv._incubating.attributes",
    ):
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            found = importlib.import_module(f"{package}.{info.name}")
            names.update(
                value
                for name, value in vars(found).items()
                if name.isupper() and isinstance(value, str) and "." in value
            )
    return frozenset(names)


DEFINED = _defined_names()
# Templates (``http.request.header.<key>``): the prefix is what is defined.
TEMPLATES = ("http.request.header.", "http.response.header.")


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def assert_defined(found: dict[str, Any]) -> None:
    unknown = [
        name
        for name in found
        if not name.startswith("pynector.")
        and name not in DEFINED
        and not name.startswith(TEMPLATES)
    ]
    assert unknown == []


def test_the_oracle_knows_the_names_checked_here() -> None:
    assert {"http.request.method", "gen_ai.usage.cache_read.input_tokens"} <= DEFINED
    assert semconv.__name__ == "opentelemetry.semconv"
    assert {s.value for s in Schemas} >= {"https://opentelemetry.io/schemas/1.44.0"}


# -- HTTP ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_http_span_attribute_is_a_defined_name(otel: Telemetry, server: Server) -> None:
    otel.plugin.configure(request_headers=["x-request-id"], response_headers=["x-request-id"])
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request_with_retry({"path": "/flaky/c1?fail=1"}, max_retries=1, retry_delay=0)
    spans = [s for s in otel.spans() if s.name == "GET"]
    assert [attributes(s).get("http.request.resend_count") for s in spans] == [None, 1]
    for span in spans:
        assert_defined(attributes(span))
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.schema_url == "https://opentelemetry.io/schemas/1.44.0"


@pytest.mark.anyio
async def test_a_method_outside_the_known_ones_is_other(otel: Telemetry, server: Server) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/cache", "method": "PURGE"})
    (span,) = otel.spans()
    assert span.name == "HTTP"
    found = attributes(span)
    assert (found["http.request.method"], found["http.request.method_original"]) == (
        "_OTHER",
        "PURGE",
    )


@pytest.mark.anyio
async def test_the_known_methods_environment_variable_replaces_the_list(
    otel: Telemetry, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET,PURGE")
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/cache", "method": "PURGE"})
        await client.request({"path": "/users", "method": "POST", "json": {}})
    purge, post = otel.spans()
    assert (purge.name, attributes(purge)["http.request.method"]) == ("PURGE", "PURGE")
    assert "http.request.method_original" not in attributes(purge)
    # A full override: POST is no longer known.
    assert (post.name, attributes(post)["http.request.method"]) == ("HTTP", "_OTHER")
    assert attributes(post)["http.request.method_original"] == "POST"
    monkeypatch.delenv("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS")
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/users", "method": "POST", "json": {}})
    assert otel.spans()[-1].name == "POST"


@pytest.mark.anyio
async def test_a_reply_below_400_leaves_the_span_status_unset(
    otel: Telemetry, server: Server
) -> None:
    # pynector raises for a 3xx it does not follow; the conventions count it no error.
    async with Pynector(transport_type="http", base_url=server.url) as client:
        with pytest.raises(HTTPStatusError):
            await client.request({"path": "/status/302"})
        with pytest.raises(HTTPStatusError):
            await client.request({"path": "/status/404"})
    redirect, missing = otel.spans()
    assert redirect.status.status_code is StatusCode.UNSET
    assert "error.type" not in attributes(redirect)
    assert attributes(redirect)["http.response.status_code"] == 302
    assert missing.status.status_code is StatusCode.ERROR
    assert attributes(missing)["error.type"] == "404"


# -- GenAI -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_genai_span_attribute_is_a_defined_name(otel: Telemetry) -> None:
    otel.plugin.configure(capture_message_content=True)
    reply = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-t",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-2024-08-06",
            "service_tier": "default",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "{}"},
                }
            ],
            "usage": {
                "prompt_tokens": 50,
                "completion_tokens": 20,
                "total_tokens": 70,
                "prompt_tokens_details": {"cached_tokens": 30},
                "completion_tokens_details": {"reasoning_tokens": 12},
            },
        }
    )
    request = chat_request(
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        service_tier="flex",
        seed=1,
    )
    async with Pynector(transport=openai(reply)) as client:
        await client.request(request)
    found = attributes(otel.spans()[0])
    assert_defined(found)
    assert found["gen_ai.output.type"] == "json"
    assert found["openai.request.service_tier"] == "flex"
    assert found["openai.response.service_tier"] == "default"
    assert found["openai.response.system_fingerprint"] == "fp_44709d6fcb"
    assert found["gen_ai.usage.input_tokens"] == 50
    assert found["gen_ai.usage.cache_read.input_tokens"] == 30
    assert found["gen_ai.usage.reasoning.output_tokens"] == 12
    assert found["gen_ai.request.stream"] is False


def test_openai_attributes_are_left_out_for_other_providers() -> None:
    _, found = request_attributes(
        {"model": "m", "service_tier": "auto"}, "messages.create", "anthropic", (None, None)
    )
    assert not any(name.startswith("openai.") for name in found)


@pytest.mark.parametrize(
    ("request_format", "expected"),
    [
        ({"response_format": {"type": "json_object"}}, "json"),
        ({"response_format": {"type": "text"}}, "text"),
        ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}}, "json"),
        ({"output_format": {"type": "json_schema", "schema": {}}}, "json"),
        ({}, None),
    ],
    ids=["chat-json", "chat-text", "responses", "anthropic", "none"],
)
def test_the_output_type_is_the_format_the_request_asks_for(
    request_format: dict[str, Any], expected: str | None
) -> None:
    _, found = request_attributes(
        {"model": "m", **request_format}, "chat.completions.create", "openai", (None, None)
    )
    assert found.get("gen_ai.output.type") == expected


def test_a_streamed_openai_chat_reports_usage_response_and_finish_reasons() -> None:
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
    ]
    usage = StreamUsage()
    for chunk in chunks:
        usage.observe(
            ChatCompletionChunk.model_validate(
                {
                    "id": "chatcmpl-s",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "gpt-4o-mini-2024-07-18",
                    "system_fingerprint": "fp_1",
                    **chunk,
                }
            )
        )
    assert usage.attributes() == {
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.response.id": "chatcmpl-s",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "openai.response.system_fingerprint": "fp_1",
        "gen_ai.response.finish_reasons": ["length"],
    }


def test_a_streamed_anthropic_message_reports_usage_response_and_finish_reasons() -> None:
    adapter: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_s",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 5,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 40,
                    "cache_creation_input_tokens": 10,
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {"output_tokens": 7},
        },
        {"type": "message_stop"},
    ]
    usage = StreamUsage()
    for event in events:
        usage.observe(adapter.validate_python(event))
    assert usage.attributes() == {
        "gen_ai.usage.input_tokens": 55,  # the API's 5 plus the cache reads and writes
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.usage.cache_read.input_tokens": 40,
        "gen_ai.usage.cache_creation.input_tokens": 10,
        "gen_ai.response.id": "msg_s",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.response.finish_reasons": ["max_tokens"],
    }


# -- captured messages -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_openai_tool_calls_and_results_are_captured_as_parts(otel: Telemetry) -> None:
    otel.plugin.configure(capture_message_content=True)
    reply = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-tool",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_2",
                                "type": "function",
                                "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                            }
                        ],
                    },
                }
            ],
        }
    )
    messages = [
        {"role": "user", "content": "Weather in Paris, then Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rainy"},
    ]
    async with Pynector(transport=openai(reply)) as client:
        await client.request({"model": "gpt-4o", "messages": messages})
    found = attributes(otel.spans()[0])
    assert json.loads(found["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris, then Oslo?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_1",
                    "name": "weather",
                    "arguments": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rainy"}],
        },
    ]
    assert json.loads(found["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_2",
                    "name": "weather",
                    "arguments": {"city": "Oslo"},
                }
            ],
            "finish_reason": "tool_calls",
        }
    ]


@pytest.mark.anyio
async def test_anthropic_tool_use_and_results_are_captured_as_parts(otel: Telemetry) -> None:
    otel.plugin.configure(capture_message_content=True)
    reply = Message.model_validate(
        {
            "id": "msg_tool",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Oslo"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 2},
        }
    )
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rainy"},
            ],
        }
    ]
    transport = SDKLike("anthropic", reply, "messages.create")
    async with Pynector(transport=transport) as client:
        await client.request({"model": "claude-sonnet-4-5", "max_tokens": 9, "messages": messages})
    found = attributes(otel.spans()[0])
    assert json.loads(found["gen_ai.input.messages"]) == [
        {
            "role": "user",
            "parts": [{"type": "tool_call_response", "id": "toolu_1", "response": "rainy"}],
        }
    ]
    assert json.loads(found["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Checking."},
                {
                    "type": "tool_call",
                    "id": "toolu_2",
                    "name": "weather",
                    "arguments": {"city": "Oslo"},
                },
            ],
            "finish_reason": "tool_use",
        }
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "recorded"),
    [
        ("SPAN_ONLY", True),
        ("span_and_event", True),
        ("true", True),
        ("EVENT_ONLY", False),  # pynector records content on spans only
        ("NO_CONTENT", False),
        ("false", False),
    ],
)
async def test_the_content_capturing_modes_of_the_genai_instrumentations(
    otel: Telemetry, monkeypatch: pytest.MonkeyPatch, mode: str, recorded: bool
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, mode)
    otel.plugin.configure()
    async with Pynector(transport=anthropic()) as client:
        await client.request(chat_request())
    assert ("gen_ai.input.messages" in attributes(otel.spans()[0])) is recorded


def test_an_unknown_capturing_mode_records_nothing_and_warns(
    otel: Telemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "everything")
    with caplog.at_level(logging.WARNING, logger="pynector.otel"):
        otel.plugin.configure()
    assert otel.plugin.capture_message_content is False
    assert "SPAN_ONLY" in caplog.text
    assert "everything" in caplog.text


def test_reply_attributes_of_a_plain_mapping_match_the_sdk_type() -> None:
    data = {
        "id": "chatcmpl-m",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "service_tier": "priority",
        "choices": [],
    }
    assert reply_attributes(data) == reply_attributes(ChatCompletion.model_validate(data))


@pytest.mark.anyio
async def test_each_redirect_hop_is_a_client_span_of_its_own(
    otel: Telemetry, server: Server
) -> None:
    tracer = otel.exported.provider.get_tracer("tests")
    async with Pynector(
        transport_type="http", base_url=server.url, follow_redirects=True
    ) as client:
        with tracer.start_as_current_span("checkout"):
            response = await client.request({"path": "/redirect", "params": {"to": "/users"}})
    assert response.status_code == 200
    first, second = [s for s in otel.spans() if s.name == "GET"]
    parent = otel.span("checkout")
    assert parent.context is not None
    for span in (first, second):
        assert span.parent is not None
        assert span.parent.span_id == parent.context.span_id
        assert span.status.status_code is StatusCode.UNSET
        assert_defined(attributes(span))
    assert attributes(first)["http.response.status_code"] == 302
    assert attributes(first)["url.full"] == f"{server.url}/redirect?to=%2Fusers"
    assert "http.request.resend_count" not in attributes(first)
    assert attributes(second)["http.response.status_code"] == 200
    assert attributes(second)["url.full"] == f"{server.url}/users"
    assert attributes(second)["http.request.resend_count"] == 1
    # Each hop carried its own span's trace context.
    assert [r.headers["traceparent"] for r in server.received] == [
        traceparent_of(first),
        traceparent_of(second),
    ]
