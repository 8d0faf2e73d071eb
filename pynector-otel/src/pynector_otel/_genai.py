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


def _arguments(value: object) -> object:
    """A tool call's arguments: OpenAI sends a JSON string, Anthropic an object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _tool_call(call_id: object, name: object, arguments: object) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": _arguments(arguments)}


def _parts(content: object) -> list[dict[str, Any]]:
    """A message's content as the conventions' parts.

    Text is kept; tool calls (Anthropic ``tool_use``, OpenAI Responses
    ``function_call``) become ``tool_call`` parts and tool results
    (``tool_result``, ``function_call_output``) ``tool_call_response``
    parts; other blocks are recorded by type only.
    """
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
        elif kind == "tool_use":
            parts.append(_tool_call(_get(block, "id"), _get(block, "name"), _get(block, "input")))
        elif kind == "function_call":
            call_id = _get(block, "call_id")
            parts.append(_tool_call(call_id, _get(block, "name"), _get(block, "arguments")))
        elif kind == "tool_result":
            response = _get(block, "content")
            if not isinstance(response, str):
                response = [part.get("content", part) for part in _parts(response)]
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": _get(block, "tool_use_id"),
                    "response": response,
                }
            )
        elif kind == "function_call_output":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": _get(block, "call_id"),
                    "response": _get(block, "output"),
                }
            )
        elif isinstance(kind, str):
            parts.append({"type": kind})
    return parts


def _message_parts(message: object) -> list[dict[str, Any]]:
    """A chat message's parts: its content, its tool calls, or the tool result it carries."""
    content = _get(message, "content")
    role = _get(message, "role")
    call_id = _get(message, "tool_call_id")
    if role == "tool" and call_id is not None:  # OpenAI chat: a tool's result
        response = content if isinstance(content, str) else _parts(content)
        return [{"type": "tool_call_response", "id": call_id, "response": response}]
    parts = _parts(content)
    calls = _get(message, "tool_calls")
    if isinstance(calls, Sequence):
        for call in calls:
            function = _get(call, "function")
            parts.append(
                _tool_call(_get(call, "id"), _get(function, "name"), _get(function, "arguments"))
            )
    return parts


def _input_message(item: object) -> dict[str, Any]:
    """One input message; an OpenAI Responses item that is a tool call or result on its own."""
    kind = _get(item, "type")
    if kind == "function_call":
        return {"role": "assistant", "parts": _parts([item])}
    if kind == "function_call_output":
        return {"role": "tool", "parts": _parts([item])}
    role = _get(item, "role") or "user"
    return {"role": "tool" if role == "tool" else role, "parts": _message_parts(item)}


def input_content(request: Mapping[str, Any]) -> Attributes:
    """``gen_ai.input.messages`` and ``gen_ai.system_instructions`` of a request dict (JSON)."""
    attributes: Attributes = {}
    messages = request.get("messages")
    if messages is None and isinstance(request.get("input"), str | list):
        messages = request["input"]
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        converted = [_input_message(m) for m in messages]
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
                    "parts": _message_parts(message),
                    "finish_reason": _get(choice, "finish_reason"),
                }
            )
        return messages
    output = _get(reply, "output")  # OpenAI Responses
    if isinstance(output, Sequence) and not isinstance(output, str):
        parts: list[dict[str, Any]] = []
        for item in output:
            kind = _get(item, "type")
            if kind == "message":
                parts.extend(_parts(_get(item, "content")))
            elif kind == "function_call":
                parts.extend(_parts([item]))
            elif isinstance(kind, str):
                parts.append({"type": kind})
        status = _get(reply, "status")
        return [{"role": "assistant", "parts": parts, "finish_reason": status}]
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
