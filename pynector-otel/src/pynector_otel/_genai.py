"""GenAI semantic conventions for the ``sdk`` transport's spans.

The span is named ``{gen_ai.operation.name} {gen_ai.request.model}``; request
parameters come from the SDK call's keyword arguments (the request dict), the
provider from the transport's ``provider``, and usage, response id, model and
finish reasons from the SDK's response object (OpenAI and Anthropic shapes, or
a mapping with the same keys). Message content is recorded only when the user
opts in, as ``gen_ai.input.messages``, ``gen_ai.system_instructions`` and
``gen_ai.output.messages`` (JSON, in the conventions' parts format).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._http import url_attributes

__all__ = ["reply_attributes", "request_attributes"]

Attributes = dict[str, Any]

# The SDK resource an operation belongs to -> gen_ai.operation.name.
_OPERATIONS = {
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}


# Request keyword -> attribute, for the numeric and string parameters recorded as given.
_PARAMETERS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}


def _get(obj: object, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: SDK objects and plain mappings alike."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def operation_name(data: Mapping[str, Any], transport: object) -> str:
    """``gen_ai.operation.name`` of an SDK call, from its operation (default: ``chat``).

    ``"chat.completions.create"``, ``"messages.create"`` and ``"responses.create"``
    are ``chat``, ``"embeddings.create"`` is ``embeddings``, ``"completions.create"``
    ``text_completion``; any other operation is recorded as given.
    """
    operation = data.get("operation")
    if not isinstance(operation, str) or not operation:
        default = getattr(transport, "default_operation", None)
        operation = default if isinstance(default, str) and default else None
    if operation is None:
        return "chat"
    resource = operation.rpartition(".")[0].removeprefix("beta.")
    return _OPERATIONS.get(resource, operation)


def request_attributes(
    data: object, transport: object, capture_content: bool
) -> tuple[str, Attributes]:
    """The span name and the attributes known before an SDK call starts."""
    request = data if isinstance(data, Mapping) else {}
    operation = operation_name(request, transport)
    attributes: Attributes = {"gen_ai.operation.name": operation}
    provider = getattr(transport, "provider", None)
    if isinstance(provider, str) and provider:
        attributes["gen_ai.provider.name"] = provider
    model = request.get("model")
    name = operation
    if isinstance(model, str) and model:
        attributes["gen_ai.request.model"] = model
        name = f"{operation} {model}"
    base_url = getattr(transport, "base_url", None)
    if base_url:
        server = url_attributes(str(base_url))
        server.pop("url.full", None)
        attributes.update(server)
    for key, attribute in _PARAMETERS.items():
        value = request.get(key)
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            attributes[attribute] = value
    stop = request.get("stop", request.get("stop_sequences"))
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = list(stop)
    choices = request.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices != 1:
        attributes["gen_ai.request.choice.count"] = choices
    encoding = request.get("encoding_format")
    if isinstance(encoding, str):
        attributes["gen_ai.request.encoding_formats"] = [encoding]
    if capture_content:
        attributes.update(_input_content(request))
    return name, attributes


def reply_attributes(reply: object, capture_content: bool) -> Attributes:
    """Usage, response id and model, finish reasons (and output content when opted in)."""
    attributes: Attributes = {}
    usage = _get(reply, "usage")
    if usage is not None:
        input_tokens = _get(usage, "input_tokens")
        if input_tokens is None:
            input_tokens = _get(usage, "prompt_tokens")
        output_tokens = _get(usage, "output_tokens")
        if output_tokens is None:
            output_tokens = _get(usage, "completion_tokens")
        if isinstance(input_tokens, int):
            attributes["gen_ai.usage.input_tokens"] = input_tokens
        if isinstance(output_tokens, int):
            attributes["gen_ai.usage.output_tokens"] = output_tokens
    response_id = _get(reply, "id")
    if isinstance(response_id, str):
        attributes["gen_ai.response.id"] = response_id
    model = _get(reply, "model")
    if isinstance(model, str):
        attributes["gen_ai.response.model"] = model
    reasons = _finish_reasons(reply)
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    if capture_content:
        output = _output_messages(reply)
        if output:
            attributes["gen_ai.output.messages"] = json.dumps(output, default=str)
    return attributes


def _finish_reasons(reply: object) -> list[str]:
    stop_reason = _get(reply, "stop_reason")  # Anthropic
    if isinstance(stop_reason, str):
        return [stop_reason]
    choices = _get(reply, "choices")  # OpenAI
    if isinstance(choices, Sequence):
        return [r for r in (_get(c, "finish_reason") for c in choices) if isinstance(r, str)]
    return []


def _parts(content: object) -> list[dict[str, Any]]:
    """A message's content as the conventions' parts: text kept, other blocks by type."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, Sequence) or isinstance(content, bytes | bytearray):
        return []
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = _get(block, "type")
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
        elif kind in ("text", "input_text", "output_text"):
            parts.append({"type": "text", "content": _get(block, "text")})
        elif isinstance(kind, str):
            parts.append({"type": kind})
    return parts


def _input_content(request: Mapping[str, Any]) -> Attributes:
    attributes: Attributes = {}
    messages = request.get("messages")
    if messages is None and isinstance(request.get("input"), str | list):
        messages = request["input"]
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        converted = [
            {"role": _get(m, "role") or "user", "parts": _parts(_get(m, "content"))}
            for m in messages
        ]
        attributes["gen_ai.input.messages"] = json.dumps(converted, default=str)
    system = request.get("system", request.get("instructions"))
    if system:
        attributes["gen_ai.system_instructions"] = json.dumps(_parts(system), default=str)
    return attributes


def _output_messages(reply: object) -> list[dict[str, Any]]:
    choices = _get(reply, "choices")
    if isinstance(choices, Sequence):
        messages = []
        for choice in choices:
            message = _get(choice, "message")
            messages.append(
                {
                    "role": _get(message, "role") or "assistant",
                    "parts": _parts(_get(message, "content")),
                    "finish_reason": _get(choice, "finish_reason"),
                }
            )
        return messages
    content = _get(reply, "content")
    if content is not None:
        return [
            {
                "role": _get(reply, "role") or "assistant",
                "parts": _parts(content),
                "finish_reason": _get(reply, "stop_reason"),
            }
        ]
    return []
