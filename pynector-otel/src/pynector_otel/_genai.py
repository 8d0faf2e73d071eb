"""GenAI message content for the spans of calls in the GenAI conventions.

The GenAI span name and attributes (operation, provider, model, request
parameters, usage, response id, finish reasons) are reported on the call by
the transport (pynector-sdk). What is left here is the one thing the tracing
plugin decides on its own: message content, recorded only when the user opts
in, as ``gen_ai.input.messages``, ``gen_ai.system_instructions`` and
``gen_ai.output.messages`` (JSON, in the conventions' parts format), from the
request dict (``call.data``) and the SDK's response object (``call.result``):
OpenAI and Anthropic shapes, or a mapping with the same keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["input_content", "output_content", "output_messages"]

Attributes = dict[str, Any]


def _get(obj: object, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: SDK objects and plain mappings alike."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


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


def input_content(request: Mapping[str, Any]) -> Attributes:
    """``gen_ai.input.messages`` and ``gen_ai.system_instructions`` of a request dict (JSON)."""
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


def output_messages(reply: object) -> list[dict[str, Any]]:
    """The reply's messages in the parts format (``gen_ai.output.messages`` as a list)."""
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


def output_content(reply: object) -> Attributes:
    """``gen_ai.output.messages`` of a reply (JSON), or nothing when it has no messages."""
    output = output_messages(reply)
    return {"gen_ai.output.messages": json.dumps(output, default=str)} if output else {}
