"""The call object: one attempt at one request, from the client through the transport to plugins.

The client makes a :class:`Call` for every attempt and hands the same object to
the plugins' ``pynector_request`` hooks and then to the transport's
``handle_request`` (or ``handle_stream``). What the client knows is set when
the call is made: the request ``data`` and ``options``, the ``deadline``, the
``attempt`` and ``batch_index``, whether telemetry is on. What only the
transport knows it reports on the same object while it works: the URL it
actually sent, the server's address, the status, the tokens the reply used,
the span attributes of its domain. Plugins read the call when the attempt ends,
so a tracing plugin never needs to know which transport it traces.

A transport used on its own (``await transport.request(data)``) makes its own
call with :meth:`Call.standalone`, passing the installed plugins
(:func:`pynector.registry.installed_plugins`) if it asks them for headers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol

if TYPE_CHECKING:
    # Defaults (PEP 696) let a bare ``Call`` or ``Pynector`` mean ``[Any, Any]``.
    from typing_extensions import TypeVar

    RequestT = TypeVar("RequestT", default=Any)
    ReplyT = TypeVar("ReplyT", default=Any)
else:
    from typing import TypeVar

    RequestT = TypeVar("RequestT")
    ReplyT = TypeVar("ReplyT")

__all__ = ["WAIT_CONCURRENCY", "WAIT_RATE", "WAIT_TOKENS", "Call", "ReplyT", "RequestT", "Usage"]

WAIT_RATE = "pynector.wait.rate"
"""The call attribute: seconds the attempt waited for the rate limiter."""
WAIT_TOKENS = "pynector.wait.token_budget"
"""The call attribute: seconds the attempt waited for the token budget."""
WAIT_CONCURRENCY = "pynector.wait.concurrency"
"""The call attribute: seconds the attempt waited for a concurrency slot
(``max_connections``, the adaptive limit, ``shared_concurrency``)."""

_NO_OPTIONS: Mapping[str, Any] = {}


class PluginSet(Protocol):
    """What a call needs of a client's plugins (``pynector._plugins.PluginSet``)."""

    def relay(self, telemetry: bool, /) -> Any:
        """The hook relay for a call with ``telemetry``, or ``None`` when no plugin takes part."""


@dataclass(slots=True, frozen=True)
class Usage:
    """What one reply cost in tokens, as the provider reported it.

    ``input_tokens`` counts every prompt token, cached ones included, and
    ``output_tokens`` every generated token, reasoning included: the sums a
    token budget is charged. The parts are ``None`` when the provider did not
    report them.

    Attributes:
        input_tokens: All input tokens (OpenAI ``prompt_tokens``; Anthropic
            ``input_tokens`` + ``cache_read_input_tokens`` +
            ``cache_creation_input_tokens``).
        output_tokens: All output tokens.
        cache_read_tokens: Input tokens served from the provider's cache.
        cache_creation_tokens: Input tokens written to the provider's cache.
        reasoning_tokens: Output tokens spent on reasoning.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens


class Call(Generic[RequestT]):
    """One attempt at one request.

    Set by the client (read-only for transports and plugins):

    Attributes:
        data: The request data as the caller gave it.
        options: The per-request options, passed on to the transport.
        timeout: Seconds this attempt may take, from when it started (``None``: no
            deadline of the client's own; an enclosing AnyIO deadline still applies).
        deadline: When it expires, on the :func:`time.monotonic` clock, or ``None``.
            A transport that enforces it itself (``handles_deadline``) passes
            :meth:`remaining` to its engine.
        attempt: 1 for the first attempt, 2 for the first retry, and so on.
        batch_index: The request's position in its batch, or ``None``.
        streaming: ``True`` for :meth:`pynector.Pynector.stream`.
        telemetry: The client's ``enable_telemetry`` setting: tracing plugins and
            trace headers are off when it is false.
        transport_type: The transport's name (``"http"``, ``"sdk"``, ...), or the
            transport class's ``transport_type``, or ``"custom"``.
        transport: The transport instance.
        observed: Whether a plugin takes part in this call (a transport may then
            report more). When it is false nothing reads what only plugins read
            (``span_name``, ``attributes``, ``request_headers``, an HTTP reply's
            peer address), and a transport may skip finding those out; the
            client itself reads ``status``, ``usage``, ``limit_key`` and
            ``response_headers``. Unless given, true when the call's plugin set
            has a plugin for it, and for a call made without a plugin set (by
            hand, in a test).

    Reported by the transport while it works (``None`` until it knows):

    Attributes:
        url: The URL actually requested (after ``params`` and redirects), with
            its credentials; redact it before recording it anywhere.
        server_address: The host name or address of the server.
        server_port: The server's port.
        status: The reply's status code (HTTP, or the HTTP status under an SDK).
        usage: The tokens the reply used (:class:`Usage`).
        limit_key: The key a rate limiter or circuit breaker groups this call
            under (an origin, a provider and model); never a secret.
        span_name: The span name in the transport's semantic conventions
            (HTTP: the method; GenAI: ``"{operation} {model}"``).
        attributes: Span attributes in the OpenTelemetry semantic conventions of
            the transport's domain (``http.*``, ``gen_ai.*``, ...), free of secrets.
            The client adds the seconds the attempt waited for its limits
            (:data:`WAIT_RATE`, :data:`WAIT_TOKENS`, :data:`WAIT_CONCURRENCY`)
            when it had to wait or pass a configured limiter's slow path.
        request_headers: The headers sent (credentials included: tracing plugins
            record only the names their allow-list names).
        response_headers: The reply's headers.

    Set by the client when the attempt ends:

    Attributes:
        result: The reply (for a stream, the stream object) once the attempt succeeded.
    """

    __slots__ = (
        "_plugins",
        "attempt",
        "attributes",
        "batch_index",
        "data",
        "deadline",
        "limit_key",
        "observed",
        "options",
        "request_headers",
        "response_headers",
        "result",
        "server_address",
        "server_port",
        "span_name",
        "status",
        "streaming",
        "telemetry",
        "timeout",
        "transport",
        "transport_type",
        "url",
        "usage",
    )

    def __init__(
        self,
        data: RequestT,
        options: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        attempt: int = 1,
        batch_index: int | None = None,
        streaming: bool = False,
        telemetry: bool = True,
        transport_type: str = "custom",
        transport: Any = None,
        plugins: PluginSet | None = None,
        observed: bool | None = None,
    ) -> None:
        self.data = data
        self.options: Mapping[str, Any] = _NO_OPTIONS if options is None else options
        self.timeout = timeout
        self.deadline: float | None = None if timeout is None else time.monotonic() + timeout
        self.attempt = attempt
        self.batch_index = batch_index
        self.streaming = streaming
        self.telemetry = telemetry
        self.transport_type = transport_type
        self.transport = transport
        self._plugins = plugins
        if observed is None:
            observed = plugins is None or plugins.relay(telemetry) is not None
        self.observed = observed
        self.url: str | None = None
        self.server_address: str | None = None
        self.server_port: int | None = None
        self.status: int | None = None
        self.usage: Usage | None = None
        self.limit_key: str | None = None
        self.span_name: str | None = None
        self.attributes: dict[str, Any] = {}
        self.request_headers: Mapping[str, str] | None = None
        self.response_headers: Mapping[str, str] | None = None
        self.result: Any = None

    @classmethod
    def standalone(
        cls,
        data: RequestT,
        options: Mapping[str, Any] | None = None,
        *,
        transport: Any = None,
        streaming: bool = False,
        plugins: PluginSet | None = None,
    ) -> Call[RequestT]:
        """A call for a transport used without a client: no deadline of its own.

        Args:
            data: The request data.
            options: The request's options.
            transport: The transport making the call.
            streaming: Whether it opens a stream.
            plugins: The plugins :meth:`trace_headers` asks (usually
                :func:`pynector.registry.installed_plugins`); none by default.
        """
        return cls(
            data,
            options,
            streaming=streaming,
            transport_type=str(getattr(type(transport), "transport_type", "custom")),
            transport=transport,
            plugins=plugins,
        )

    def __repr__(self) -> str:
        # The data, options, URL and headers carry credentials: left out.
        index = "" if self.batch_index is None else f" batch_index={self.batch_index}"
        return (
            f"<Call transport_type={self.transport_type!r} attempt={self.attempt}{index} "
            f"status={self.status!r}>"
        )

    def remaining(self) -> float | None:
        """Seconds left before :attr:`deadline` (``None`` without one; may be negative)."""
        deadline = self.deadline
        return None if deadline is None else deadline - time.monotonic()

    def next_hop(self) -> dict[str, str]:
        """Tell the plugins the request is sent again within this attempt (a redirect).

        A transport that follows redirects calls it between two hops, after
        reporting the hop that ended (its URL, status, ...). Plugins end that
        hop's span and start the next one's (``pynector_request_hop``); what was
        reported is then cleared for the next hop, and the trace headers for
        it are returned (``{}`` without a plugin).
        """
        plugins = self._plugins
        relay = None if plugins is None else plugins.relay(self.telemetry)
        if relay is None:
            return {}
        relay.pynector_request_hop(info=self)
        self.attributes = {}
        self.status = None
        self.response_headers = None
        return self.trace_headers()

    def trace_headers(self) -> dict[str, str]:
        """Headers the plugins add to this call (the W3C trace context), or ``{}``.

        A transport that carries headers asks once per attempt, inside the
        plugins' ``pynector_request`` wrappers, and keeps the caller's own
        headers over these. Empty with ``enable_telemetry=False`` or no plugin.
        """
        plugins = self._plugins
        if plugins is None:
            return {}
        relay = plugins.relay(self.telemetry)
        if relay is None:
            return {}
        headers: dict[str, str] = {}
        relay.pynector_headers(headers=headers)
        return headers
