"""What an SDK call reports on its :class:`pynector.Call`: GenAI span attributes and usage.

The span is named ``{gen_ai.operation.name} {gen_ai.request.model}``; request
parameters come from the SDK call's keyword arguments, the provider from the
transport, ``server.address``/``server.port`` from its base URL, and usage,
response id, model and finish reasons from the SDK's response object (OpenAI
and Anthropic shapes, or a mapping with the same keys). Message content is no
attribute here: recording it is the tracing plugin's choice.

:func:`usage_of` reads the reply's usage as a :class:`pynector.Usage`;
:class:`StreamUsage` does the same, best effort, for the events of a stream.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pynector.call import Usage

__all__ = [
    "StreamUsage",
    "operation_name",
    "reply_attributes",
    "reply_report",
    "request_attributes",
    "server_of",
    "uninstrumented",
    "usage_of",
]

Attributes = dict[str, Any]

# The SDK resource an operation belongs to -> gen_ai.operation.name, for the
# methods that run that operation (a resource's other methods, such as
# messages.count_tokens or responses.retrieve, are named as given).
_OPERATIONS = {
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
_RUNNING_METHODS = frozenset({"create", "stream", "parse"})
# response_format / text.format / output_format "type" -> gen_ai.output.type.
_OUTPUT_TYPES = {"text": "text", "json_object": "json", "json_schema": "json", "json": "json"}

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

_DEFAULT_PORTS = {"http": 80, "https": 443}

# The counters a usage object may carry, by provider shape.
_COUNTERS = (
    "prompt_tokens",  # OpenAI chat, completions, embeddings
    "completion_tokens",
    "input_tokens",  # OpenAI responses; Anthropic (without the cached parts)
    "output_tokens",
    "cache_read_input_tokens",  # Anthropic
    "cache_creation_input_tokens",
)
# OpenAI's details: (object, counter) -> the name kept.
_DETAILS = (
    ("prompt_tokens_details", "cached_tokens", "cached_tokens"),
    ("input_tokens_details", "cached_tokens", "cached_tokens"),
    ("completion_tokens_details", "reasoning_tokens", "reasoning_tokens"),
    ("output_tokens_details", "reasoning_tokens", "reasoning_tokens"),
)


def _getter(obj: object) -> Callable[[str], Any]:
    """A reader of ``obj.name`` or ``obj[name]``: SDK objects and plain mappings alike.

    A pydantic model (the SDKs' replies) keeps its fields in ``__dict__`` and
    the API's extra fields in ``__pydantic_extra__``: they are read there,
    since ``getattr`` of a name a model lacks raises inside pydantic, which
    costs more than all the rest (this runs on every reply).
    """
    if hasattr(type(obj), "__pydantic_fields__"):
        fields: dict[str, Any] = obj.__dict__
        extra = getattr(obj, "__pydantic_extra__", None)
        return {**extra, **fields}.get if extra else fields.get
    if isinstance(obj, Mapping):
        return obj.get
    return lambda name: getattr(obj, name, None)


def _get(obj: object, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (see :func:`_getter`)."""
    return _getter(obj)(name)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def operation_name(operation: str) -> str:
    """``gen_ai.operation.name`` of an SDK operation.

    ``"chat.completions.create"``, ``"messages.create"`` and ``"responses.create"``
    (and their ``stream`` and ``parse`` helpers) are ``chat``,
    ``"embeddings.create"`` is ``embeddings``, ``"completions.create"``
    ``text_completion``; any other operation (``"messages.count_tokens"``,
    ``"models.list"``, ``"responses.retrieve"``) is recorded as given.
    """
    resource, _, method = operation.rpartition(".")
    if method not in _RUNNING_METHODS:
        return operation
    return _OPERATIONS.get(resource.removeprefix("beta."), operation)


def server_of(base_url: str) -> tuple[str | None, int | None]:
    """The host and port of a base URL (the scheme's default port when it names none)."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError:
        return None, None
    if not parts.hostname:
        return None, None
    return parts.hostname, port or _DEFAULT_PORTS.get(parts.scheme)


def _parameters(request: Mapping[str, Any], attributes: Attributes) -> None:
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
    output = _output_type(request)
    if output is not None:
        attributes["gen_ai.output.type"] = output


def _output_type(request: Mapping[str, Any]) -> str | None:
    """``gen_ai.output.type`` of the format a request asks for, when it asks for one.

    OpenAI chat ``response_format``, OpenAI Responses ``text.format``,
    Anthropic ``output_format`` (or ``output_config.format``).
    """
    text = request.get("text")
    config = request.get("output_config")
    for fmt in (
        request.get("response_format"),
        text.get("format") if isinstance(text, Mapping) else None,
        request.get("output_format"),
        config.get("format") if isinstance(config, Mapping) else None,
    ):
        kind = _get(fmt, "type") if fmt is not None else None
        if isinstance(kind, str):
            return _OUTPUT_TYPES.get(kind, kind)
    return None


def request_attributes(
    request: Mapping[str, Any],
    operation: str,
    provider: str,
    server: tuple[str | None, int | None],
    stream: bool = False,
) -> tuple[str, Attributes]:
    """The span name and the attributes known before an SDK call starts.

    Args:
        request: The SDK call's keyword arguments.
        operation: The SDK operation that runs (``"messages.create"``).
        provider: ``"openai"`` or ``"anthropic"``.
        server: The API's host and port (:func:`server_of`).
        stream: Whether the call streams (``gen_ai.request.stream``, recorded
            for the operations the conventions name).
    """
    name = operation_name(operation)
    attributes: Attributes = {"gen_ai.operation.name": name, "gen_ai.provider.name": provider}
    if name in ("chat", "text_completion"):
        attributes["gen_ai.request.stream"] = stream or request.get("stream") is True
    if provider == "openai":
        tier = request.get("service_tier")
        if isinstance(tier, str):
            attributes["openai.request.service_tier"] = tier
    model = request.get("model")
    if isinstance(model, str) and model:
        attributes["gen_ai.request.model"] = model
        name = f"{name} {model}"
    address, port = server
    if address:
        attributes["server.address"] = address
        if port:
            attributes["server.port"] = port
    _parameters(request, attributes)
    return name, attributes


def reply_report(reply: object) -> tuple[Usage | None, Attributes]:
    """The usage of an SDK response and its attributes, read once.

    The attributes: the ``gen_ai.usage.*`` counters (:func:`_usage_attributes`),
    ``gen_ai.response.id`` and ``model``, ``gen_ai.response.finish_reasons``,
    and OpenAI's ``openai.response.service_tier`` and
    ``openai.response.system_fingerprint``.
    """
    get = _getter(reply)
    counters: dict[str, int] = {}
    usage = get("usage")
    if usage is not None:
        _counters(usage, counters)
    attributes = _usage_attributes(counters)
    _response_attributes(get, attributes)
    reasons = _finish_reasons(get)
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    return _usage(counters), attributes


def _response_attributes(get: Callable[[str], Any], attributes: Attributes) -> None:
    """The response's id and model, and OpenAI's service tier and system fingerprint."""
    response_id = get("id")
    if isinstance(response_id, str):
        attributes["gen_ai.response.id"] = response_id
    model = get("model")
    if isinstance(model, str):
        attributes["gen_ai.response.model"] = model
    tier = get("service_tier")
    if isinstance(tier, str):
        attributes["openai.response.service_tier"] = tier
    fingerprint = get("system_fingerprint")
    if isinstance(fingerprint, str):
        attributes["openai.response.system_fingerprint"] = fingerprint


def reply_attributes(reply: object) -> Attributes:
    """The attributes of :func:`reply_report`."""
    return reply_report(reply)[1]


def _usage_attributes(counters: Mapping[str, int]) -> Attributes:
    """The ``gen_ai.usage.*`` attributes of a reply's counters.

    ``gen_ai.usage.input_tokens`` counts every input token, as the
    conventions ask: Anthropic's ``input_tokens`` leaves out the cached
    parts, which are added (``cache_read_input_tokens`` and
    ``cache_creation_input_tokens``); OpenAI's already includes its cached
    tokens. The parts: ``gen_ai.usage.cache_read.input_tokens``,
    ``gen_ai.usage.cache_creation.input_tokens`` and
    ``gen_ai.usage.reasoning.output_tokens``, when reported.
    """
    attributes: Attributes = {}
    input_tokens = counters.get("input_tokens", counters.get("prompt_tokens"))
    output_tokens = counters.get("output_tokens", counters.get("completion_tokens"))
    cache_read = counters.get("cache_read_input_tokens")
    cache_creation = counters.get("cache_creation_input_tokens")
    if input_tokens is not None:
        if "prompt_tokens" not in counters:
            input_tokens += (cache_read or 0) + (cache_creation or 0)
        attributes["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = output_tokens
    if cache_read is None:
        cache_read = counters.get("cached_tokens")
    if cache_read is not None:
        attributes["gen_ai.usage.cache_read.input_tokens"] = cache_read
    if cache_creation is not None:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = cache_creation
    reasoning = counters.get("reasoning_tokens")
    if reasoning is not None:
        attributes["gen_ai.usage.reasoning.output_tokens"] = reasoning
    return attributes


def _finish_reasons(get: Callable[[str], Any]) -> list[str]:
    stop_reason = get("stop_reason")  # Anthropic
    if isinstance(stop_reason, str):
        return [stop_reason]
    choices = get("choices")  # OpenAI
    if isinstance(choices, Sequence):
        return [r for r in (_get(c, "finish_reason") for c in choices) if isinstance(r, str)]
    return []


# -- usage --------------------------------------------------------------------


def _counters(usage: object, into: dict[str, int]) -> None:
    """The token counters a usage object reports, added to ``into`` (later values win)."""
    get = _getter(usage)
    for name in _COUNTERS:
        value = _count(get(name))
        if value is not None:
            into[name] = value
    for owner, counter, kept in _DETAILS:
        details = get(owner)
        if details is not None:
            value = _count(_get(details, counter))
            if value is not None:
                into[kept] = value


def _usage(counters: Mapping[str, int]) -> Usage | None:
    """A :class:`Usage` from the counters of either provider's shape."""
    if "prompt_tokens" in counters or "completion_tokens" in counters:  # OpenAI chat
        input_tokens = counters.get("prompt_tokens", 0)
        output_tokens = counters.get("completion_tokens", 0)
    elif "input_tokens" in counters or "output_tokens" in counters:
        # Anthropic's input_tokens leaves out the cached parts; OpenAI's (responses) has none.
        input_tokens = (
            counters.get("input_tokens", 0)
            + counters.get("cache_read_input_tokens", 0)
            + counters.get("cache_creation_input_tokens", 0)
        )
        output_tokens = counters.get("output_tokens", 0)
    else:
        return None
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=counters.get("cache_read_input_tokens", counters.get("cached_tokens")),
        cache_creation_tokens=counters.get("cache_creation_input_tokens"),
        reasoning_tokens=counters.get("reasoning_tokens"),
    )


def usage_of(reply: object) -> Usage | None:
    """The tokens an SDK response reports in its ``usage``, or ``None`` without one.

    OpenAI: ``prompt_tokens`` (or ``input_tokens``) with
    ``prompt_tokens_details.cached_tokens``, ``completion_tokens`` (or
    ``output_tokens``) with ``completion_tokens_details.reasoning_tokens``.
    Anthropic: ``input_tokens + cache_read_input_tokens +
    cache_creation_input_tokens`` as the input, with the two cache parts.
    """
    return reply_report(reply)[0]


class StreamUsage:
    """The usage a stream's events report, gathered as they pass (best effort).

    Seen: a ``usage`` on the event itself (OpenAI's last chat chunk with
    ``stream_options={"include_usage": True}``, Anthropic's ``message_delta``)
    or on the message or response it carries (Anthropic's ``message_start``,
    OpenAI's ``response.completed``). Later counters replace earlier ones, as
    Anthropic's cumulative ``message_delta`` usage replaces ``message_start``'s.
    """

    __slots__ = ("_counters", "_reasons", "_response", "seen")

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}
        self._response: Attributes = {}
        self._reasons: dict[int, str] = {}
        self.seen = False

    def observe(self, event: object) -> None:
        """Take the usage, response id and model, and finish reasons ``event`` carries."""
        get = _getter(event)
        usage = get("usage")
        carried = (
            get("message")  # Anthropic's message_start, the helpers' message_stop
            or get("response")  # OpenAI responses' created, completed
            or get("chunk")  # OpenAI chat.completions.stream's chunk event
        )
        if usage is None and carried is not None:
            usage = _get(carried, "usage")
        if usage is not None and not isinstance(usage, int | str):
            _counters(usage, self._counters)
            self.seen = True
        source = get if carried is None or isinstance(carried, str) else _getter(carried)
        if get("object") == "chat.completion.chunk" or carried is not None:
            _response_attributes(source, self._response)
        self._finish(get, source)

    def _finish(self, get: Callable[[str], Any], source: Callable[[str], Any]) -> None:
        """The finish reasons an event reports (kept per choice; later ones win)."""
        delta = get("delta")  # Anthropic's message_delta
        reason = _get(delta, "stop_reason") if delta is not None else None
        if not isinstance(reason, str):
            reason = source("stop_reason")
        if isinstance(reason, str):
            self._reasons[0] = reason
            return
        choices = source("choices")  # OpenAI chat chunks
        if isinstance(choices, Sequence):
            for position, choice in enumerate(choices):
                found = _get(choice, "finish_reason")
                if isinstance(found, str):
                    index = _get(choice, "index")
                    self._reasons[index if isinstance(index, int) else position] = found
            return
        status = source("status")  # OpenAI responses: completed, incomplete, failed
        if isinstance(status, str) and get("type") in _RESPONSE_ENDS:
            self._reasons[0] = status

    def usage(self) -> Usage | None:
        """The usage seen so far, or ``None`` when no event carried any."""
        return _usage(self._counters) if self.seen else None

    def attributes(self) -> Attributes:
        """What :func:`reply_report` gives for a reply: usage, response and finish reasons."""
        attributes = _usage_attributes(self._counters)
        attributes.update(self._response)
        if self._reasons:
            attributes["gen_ai.response.finish_reasons"] = [
                self._reasons[index] for index in sorted(self._reasons)
            ]
        return attributes


_RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def uninstrumented(method: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK method without an OpenTelemetry instrumentation's wrapper, inside pynector's span.

    The SDK instrumentations (``opentelemetry-instrumentation-openai-v2``, ...)
    wrap the SDKs' methods with ``wrapt``; not all of them honour
    OpenTelemetry's suppression context key, which pynector-otel sets while its
    span covers an SDK call. While it is set, the wrapper is stepped over so
    the call gets one span, pynector's. Nothing is imported: without
    OpenTelemetry loaded there is nothing to suppress.
    """
    wrapper = getattr(method, "_self_wrapper", None)
    if wrapper is None or not str(getattr(wrapper, "__module__", "")).startswith(
        "opentelemetry.instrumentation."
    ):
        return method
    context = sys.modules.get("opentelemetry.context")
    key = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    if context is None or key is None or not context.get_value(key):
        return method
    unwrapped: Callable[..., Any] = getattr(method, "__wrapped__", method)
    return unwrapped
