"""The GenAI attributes and usage an SDK reply reports, for the reply shapes the SDKs have.

The SDKs' own response types (``openai.types``, ``anthropic.types``), built
from the JSON the APIs send, and plain mappings with the same keys.
"""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from pynector import Usage
from pynector_sdk._semconv import (
    StreamUsage,
    operation_name,
    reply_attributes,
    request_attributes,
    server_of,
    usage_of,
)

from ._fake_api import ANTHROPIC_CACHED_USAGE, OPENAI_CACHED_USAGE, chat_completion, message

CHAT = ChatCompletion.model_validate(chat_completion("cached"))
MESSAGE = Message.model_validate(message("cached"))
EMBEDDING = CreateEmbeddingResponse.model_validate(
    {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.25, 0.5]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
)


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("chat.completions.create", "chat"),
        ("chat.completions.stream", "chat"),
        ("beta.chat.completions.parse", "chat"),
        ("messages.create", "chat"),
        ("messages.stream", "chat"),
        ("responses.create", "chat"),
        ("embeddings.create", "embeddings"),
        ("completions.create", "text_completion"),
        ("models.list", "models.list"),
        ("models.retrieve", "models.retrieve"),
        ("messages.count_tokens", "messages.count_tokens"),
        ("beta.messages.count_tokens", "beta.messages.count_tokens"),
        ("responses.retrieve", "responses.retrieve"),
        ("chat.completions.list", "chat.completions.list"),
    ],
)
def test_the_operation_name_follows_the_sdk_resource(operation: str, expected: str) -> None:
    assert operation_name(operation) == expected


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.openai.com/v1", ("api.openai.com", 443)),
        ("http://127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("http://[::1]:9/v1", ("::1", 9)),
        ("http://localhost:99999", (None, None)),  # a port out of range
        ("not a url", (None, None)),
    ],
)
def test_the_server_comes_from_the_base_url(
    base_url: str, expected: tuple[str | None, int | None]
) -> None:
    assert server_of(base_url) == expected


def test_request_parameters_become_attributes_as_given() -> None:
    request: dict[str, Any] = {
        "model": "gpt-4o",
        "max_completion_tokens": 64,
        "top_p": 0.9,
        "seed": 7,
        "n": 3,
        "stop": ["a", "b"],
        "encoding_format": "float",
        "temperature": True,  # a bool is no temperature: left out
        "messages": [{"role": "user", "content": "never an attribute"}],
    }
    name, attributes = request_attributes(request, "chat.completions.create", "openai", ("h", 443))
    assert name == "chat gpt-4o"
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.stream": False,
        "server.address": "h",
        "server.port": 443,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.seed": 7,
        "gen_ai.request.choice.count": 3,
        "gen_ai.request.stop_sequences": ["a", "b"],
        "gen_ai.request.encoding_formats": ["float"],
    }


def test_a_request_without_a_model_is_named_by_its_operation() -> None:
    name, attributes = request_attributes({}, "models.list", "anthropic", (None, None))
    assert name == "models.list"
    assert attributes == {
        "gen_ai.operation.name": "models.list",
        "gen_ai.provider.name": "anthropic",
    }


def test_reply_attributes_of_the_sdks_types_and_of_mappings() -> None:
    assert reply_attributes(CHAT) == {
        "gen_ai.usage.input_tokens": 50,  # OpenAI's prompt_tokens include the cached ones
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cache_read.input_tokens": 30,
        "gen_ai.usage.reasoning.output_tokens": 12,
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "cached",
        "gen_ai.response.finish_reasons": ["stop"],
    }
    anthropic = reply_attributes(MESSAGE)
    # Anthropic's input_tokens (5) leave out the cache reads (40) and writes (10).
    assert anthropic["gen_ai.usage.input_tokens"] == 55
    assert anthropic["gen_ai.usage.cache_read.input_tokens"] == 40
    assert anthropic["gen_ai.usage.cache_creation.input_tokens"] == 10
    assert "gen_ai.usage.reasoning.output_tokens" not in anthropic
    assert anthropic["gen_ai.response.finish_reasons"] == ["end_turn"]
    embedding = reply_attributes(EMBEDDING)
    assert embedding["gen_ai.usage.input_tokens"] == 5
    assert "gen_ai.usage.output_tokens" not in embedding
    assert reply_attributes(message("m")) == reply_attributes(Message.model_validate(message("m")))
    assert reply_attributes(object()) == {}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (CHAT, Usage(50, 20, 30, None, 12)),
        ({"usage": OPENAI_CACHED_USAGE}, Usage(50, 20, 30, None, 12)),
        (MESSAGE, Usage(55, 2, 40, 10, None)),
        ({"usage": ANTHROPIC_CACHED_USAGE}, Usage(55, 2, 40, 10, None)),
        (EMBEDDING, Usage(5, 0)),
        ({"usage": {"total_tokens": 3}}, None),  # no counter it knows
        ({"usage": None}, None),
        (object(), None),
    ],
    ids=[
        "openai",
        "openai-mapping",
        "anthropic",
        "anthropic-mapping",
        "embeddings",
        "unknown",
        "none",
        "no-usage",
    ],
)
def test_usage_of_a_reply(reply: object, expected: Usage | None) -> None:
    assert usage_of(reply) == expected


def test_a_streams_later_usage_replaces_the_earlier_counters() -> None:
    class Event:
        def __init__(self, **fields: Any) -> None:
            self.__dict__.update(fields)

    usage = StreamUsage()
    assert usage.usage() is None
    usage.observe(Event(type="ping"))
    assert usage.usage() is None
    usage.observe(Event(message=Event(usage={**ANTHROPIC_CACHED_USAGE, "output_tokens": 1})))
    usage.observe(Event(usage={"output_tokens": 9}))  # message_delta: cumulative
    assert usage.usage() == Usage(55, 9, 40, 10, None)
    assert usage.attributes() == {
        "gen_ai.usage.input_tokens": 55,
        "gen_ai.usage.output_tokens": 9,
        "gen_ai.usage.cache_read.input_tokens": 40,
        "gen_ai.usage.cache_creation.input_tokens": 10,
    }
