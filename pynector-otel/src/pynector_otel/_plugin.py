"""The pynector plugin: spans for requests, retries and batches, and trace context.

Each wrapping hook returns a small context manager that the client enters in
the task that runs the operation, so the span it starts is the current span
while the transport runs: a batch's span is the parent of its requests' spans,
a ``request_with_retry`` span the parent of its attempts'. The first thing
every hook checks is the client's ``enable_telemetry`` and then whether there
is anywhere for the data to go (a tracer provider that is not the API's no-op
one, or the ``pynector.otel`` logger enabled for DEBUG); if not, it returns
``None`` and the client runs the operation unwrapped.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
import weakref
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import pynector
from pynector.hookspecs import BatchInfo, RequestInfo, RetryInfo, RetryWaitInfo

from . import _genai
from ._http import header_attributes
from ._metrics import SCHEMA_URL, Instruments, no_global_meter_provider
from ._redact import allowed_headers
from ._version import __version__

__all__ = ["OtelPlugin"]

_log = logging.getLogger("pynector.otel")

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
REQUEST_HEADERS_ENV = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"
RESPONSE_HEADERS_ENV = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE"

_MAX_DESCRIPTION = 500
_NOOP_TRACER = trace.NoOpTracer()
_UNSET = object()
# opentelemetry-api loads a global provider named by this variable on first use.
_PROVIDER_ENV = "OTEL_PYTHON_TRACER_PROVIDER"
_METER_PROVIDER_ENV = "OTEL_PYTHON_METER_PROVIDER"
# The context keys OpenTelemetry's instrumentations check before they record:
# set while pynector's own span covers the call, so that the httpx and aiohttp
# instrumentations (and, for SDK calls, the SDK instrumentations) add no second
# span for it. Defined by opentelemetry-api (opentelemetry.context).
_SUPPRESS_HTTP = getattr(otel_context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)
_SUPPRESS_ALL = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
_SUPPRESS_HTTP_ONLY = tuple(key for key in (_SUPPRESS_HTTP,) if key is not None)
_SUPPRESS_SDK = tuple(key for key in (_SUPPRESS_HTTP, _SUPPRESS_ALL) if key is not None)


def _no_global_provider() -> bool:
    """True while no global tracer provider has been set.

    opentelemetry-api keeps it in ``trace._TRACER_PROVIDER`` (``None`` until
    set); reading that costs a twentieth of ``trace.get_tracer_provider()``,
    which also looks the environment up on every call. Should the variable
    ever go, this answers ``False`` and the public call decides.
    """
    return getattr(trace, "_TRACER_PROVIDER", _UNSET) is None


# Inside one of our request spans: the transport may inject trace context.
_INJECT: ContextVar[bool] = ContextVar("pynector_otel_inject", default=False)
# The wait chosen after a failed attempt, read by the next attempt of the same task.
_PENDING_WAIT: ContextVar[RetryWaitInfo | None] = ContextVar("pynector_otel_wait", default=None)
# The attempt's scope, which a redirect (pynector_request_hop) ends and starts again.
# A weak reference: callbacks the engine schedules during the request copy the
# context, and must not keep the call (and through it the transport) alive.
_REQUEST: ContextVar[weakref.ref[_RequestScope] | None] = ContextVar(
    "pynector_otel_request", default=None
)
# The enclosing request_with_retry scope, which counts its attempts.
_RETRY: ContextVar[_RetryScope | None] = ContextVar("pynector_otel_retry", default=None)
# The enclosing batch scope, told whether its requests are HTTP requests.
_BATCH: ContextVar[_BatchScope | None] = ContextVar("pynector_otel_batch", default=None)
# What a transport's attributes hold when it reports HTTP: status errors are then
# recorded by status code.
_HTTP_KEY = "http.request.method"
# ... and GenAI: message content may then be captured.
_GENAI_KEY = "gen_ai.operation.name"


# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: the modes of
# opentelemetry-util-genai (case-insensitive) and the older true/false.
# pynector records content on spans only: EVENT_ONLY records none there.
_CONTENT_ON_SPANS = frozenset({"span_only", "span_and_event", "true", "1", "yes", "on"})
_CONTENT_OFF = frozenset({"", "no_content", "event_only", "false", "0", "no", "off"})


def _capture_mode(value: str) -> bool:
    """Whether a capture-mode value puts message content on spans (unknown values: no)."""
    mode = value.strip().lower()
    if mode in _CONTENT_ON_SPANS:
        return True
    if mode not in _CONTENT_OFF:
        _log.warning(
            "%s=%r is not a content capturing mode; use NO_CONTENT, SPAN_ONLY, EVENT_ONLY "
            "or SPAN_AND_EVENT (or true/false): recording no message content",
            CAPTURE_CONTENT_ENV,
            value,
        )
    return False


def _env_list(name: str) -> list[str]:
    return [part for part in os.environ.get(name, "").split(",") if part.strip()]


def _allow_list(option: str, names: Iterable[str]) -> frozenset[str]:
    """The header names of an allow-list that may be recorded (lower-cased)."""
    if isinstance(names, str):
        raise pynector.ConfigurationError(
            f"{option}={names!r}: pass a list of header names, e.g. {option}=['content-type']"
        )
    allowed, refused = allowed_headers(names)
    if refused:
        _log.warning(
            "%s: not recording %s: these headers can carry credentials",
            option,
            ", ".join(sorted(refused)),
        )
    return allowed


def _qualified(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _is_cancellation(exc: BaseException) -> bool:
    return not isinstance(exc, Exception) and type(exc).__name__ in ("Cancelled", "CancelledError")


def error_type(exc: BaseException, http: bool = False) -> str:
    """The ``error.type`` of a failure: the status of an HTTP status error, else the class.

    Args:
        exc: The failure.
        http: Whether it ended an HTTP request (the transport reported
            ``http.request.method``): an error with an int ``status_code`` is
            then recorded as that code (``"503"``).
    """
    if _is_cancellation(exc):
        return "cancelled"
    status = getattr(exc, "status_code", None)
    if http and isinstance(status, int):
        return str(status)
    return _qualified(type(exc))


def _fail(span: trace.Span, exc: BaseException, http: bool) -> str | None:
    """Mark ``span`` failed by ``exc``; return its ``error.type``.

    An HTTP reply below 400 that the client raised for (a redirect not
    followed) is no error in the HTTP client conventions: the span's status
    stays unset, and ``None`` is returned.
    """
    status = getattr(exc, "status_code", None)
    if http and isinstance(status, int) and status < 400:
        return None
    etype = error_type(exc, http)
    if not span.is_recording():
        return etype
    span.set_attribute("error.type", etype)
    if _is_cancellation(exc):
        span.set_status(Status(StatusCode.ERROR, "cancelled"))
        return etype
    message = str(exc)
    span.set_status(Status(StatusCode.ERROR, message[:_MAX_DESCRIPTION]))
    # The exception event without chained causes: pynector's own message is
    # free of secrets, a wrapped library's may not be.
    span.add_event(
        "exception",
        {
            "exception.type": _qualified(type(exc)),
            "exception.message": message,
            "exception.stacktrace": "".join(traceback.format_exception(exc, chain=False)),
        },
    )
    return etype


def _propagate() -> Any:
    """``opentelemetry.propagate``, imported on first use (it loads the propagators)."""
    global _propagate_module
    if _propagate_module is None:
        from opentelemetry import propagate

        _propagate_module = propagate
    return _propagate_module


_propagate_module: Any = None


class _Scope:
    """A span made current for the duration of a ``with`` block."""

    __slots__ = ("_span", "_start", "_token")

    _span: trace.Span
    _token: Token[otel_context.Context]
    _start: float

    def _open(
        self,
        tracer: trace.Tracer,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
        suppress: tuple[str, ...] = (),
    ) -> None:
        self._span = span = tracer.start_span(name, kind=kind, attributes=attributes)
        context = trace.set_span_in_context(span)
        for key in suppress:
            context = otel_context.set_value(key, True, context)
        self._token = otel_context.attach(context)
        self._start = time.perf_counter()

    def _close(self) -> None:
        self._span.end()
        otel_context.detach(self._token)

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000


def _content_attributes(call: RequestInfo, succeeded: bool) -> dict[str, Any]:
    """GenAI message content of a call (the prompt, and the completion when it succeeded)."""
    data = call.data
    attributes = _genai.input_content(data) if isinstance(data, Mapping) else {}
    if succeeded and call.result is not None:
        attributes.update(_genai.output_content(call.result))
    return attributes


class _RequestScope(_Scope):
    """One attempt's CLIENT span, named and described by what the transport reported on the call.

    The span starts as ``pynector.request`` with pynector's own attributes;
    when the attempt ends it takes the call's ``span_name`` and
    ``attributes`` (the transport's semantic conventions), the allow-listed
    headers of ``request_headers`` / ``response_headers``, and, for a GenAI
    call when the user opted in, the message content.
    """

    __slots__ = (
        "__weakref__",
        "_attributes",
        "_info",
        "_inject",
        "_metrics",
        "_plugin",
        "_request",
        "_tracer",
    )

    def __init__(
        self,
        plugin: OtelPlugin,
        tracer: trace.Tracer,
        instruments: Instruments | None,
        info: RequestInfo,
    ) -> None:
        self._plugin = plugin
        self._tracer = tracer
        self._metrics = instruments
        self._info = info

    def __enter__(self) -> trace.Span:
        info = self._info
        attributes: dict[str, Any] = {
            "pynector.transport": info.transport_type,
            "pynector.attempt": info.attempt,
        }
        if info.batch_index is not None:
            attributes["pynector.batch.index"] = info.batch_index
        if info.streaming:
            attributes["pynector.stream"] = True
        wait = _PENDING_WAIT.get()
        if wait is not None:
            _PENDING_WAIT.set(None)
            if wait.attempt + 1 == info.attempt:
                attributes["pynector.retry.delay"] = wait.delay
                attributes["pynector.retry.reason"] = wait.reason
        retry = _RETRY.get()
        if retry is not None:
            retry.attempts = info.attempt
        self._attributes = attributes
        suppress = _SUPPRESS_SDK if info.transport_type == "sdk" else _SUPPRESS_HTTP_ONLY
        self._open(self._tracer, "pynector.request", SpanKind.CLIENT, attributes, suppress)
        self._inject = _INJECT.set(True)
        self._request = _REQUEST.set(weakref.ref(self))
        return self._span

    def hop(self) -> None:
        """End the span of the hop that was redirected and start the next hop's.

        Each physical request gets its CLIENT span (the HTTP conventions ask
        for it), with the same parent and pynector's attributes; the ended
        one has what the transport reported of its hop (a 3xx status).
        """
        span = self._span
        info = self._info
        if span.is_recording():
            self._describe_span(span, False)
        if self._metrics is not None:
            seconds = time.perf_counter() - self._start
            self._metrics.record_attempt(info.attributes, info.transport_type, seconds, None)
        suppress = _SUPPRESS_SDK if info.transport_type == "sdk" else _SUPPRESS_HTTP_ONLY
        otel_context.detach(self._token)
        span.end()
        attributes = {
            k: v for k, v in self._attributes.items() if not k.startswith("pynector.retry.")
        }
        self._open(self._tracer, "pynector.request", SpanKind.CLIENT, attributes, suppress)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        info = self._info
        http = _HTTP_KEY in info.attributes
        seconds = time.perf_counter() - self._start
        etype: str | None = None
        try:
            if span.is_recording():
                self._describe_span(span, exc is None)
            for scope in (_RETRY.get(), _BATCH.get()):
                if scope is not None:
                    scope.http = http
            if exc is not None:
                etype = _fail(span, exc, http)
            if self._metrics is not None:
                self._metrics.record_attempt(info.attributes, info.transport_type, seconds, etype)
            if etype is None:
                if _log.isEnabledFor(logging.DEBUG):
                    _log.debug(
                        "%s -> %s in %.1f ms (attempt %d)",
                        self._describe(),
                        info.status or "ok",
                        self._elapsed_ms(),
                        info.attempt,
                    )
            elif _log.isEnabledFor(logging.DEBUG):
                _log.debug(
                    "%s failed in %.1f ms (attempt %d): %s",
                    self._describe(),
                    self._elapsed_ms(),
                    info.attempt,
                    etype,
                )
        finally:
            _REQUEST.reset(self._request)
            _INJECT.reset(self._inject)
            self._close()

    def _describe_span(self, span: trace.Span, succeeded: bool) -> None:
        """Give the span what the transport reported on the call."""
        info = self._info
        plugin = self._plugin
        if info.span_name:
            span.update_name(info.span_name)
        attributes = info.attributes
        if attributes:
            span.set_attributes(attributes)
        if plugin.request_headers and info.request_headers:
            span.set_attributes(
                header_attributes("request", info.request_headers, plugin.request_headers)
            )
        if plugin.response_headers and info.response_headers:
            span.set_attributes(
                header_attributes("response", info.response_headers, plugin.response_headers)
            )
        if plugin.capture_message_content and _GENAI_KEY in attributes:
            span.set_attributes(_content_attributes(info, succeeded))

    def _describe(self) -> str:
        """What the log lines call this request: method and redacted URL, or the span name."""
        info = self._info
        attributes = info.attributes
        method = attributes.get("http.request.method_original") or attributes.get(_HTTP_KEY)
        if method is not None:
            return f"{method} {attributes.get('url.full', '<unknown URL>')}"
        return info.span_name or "pynector.request"


class _RetryScope(_Scope):
    __slots__ = ("_info", "_retry", "_tracer", "attempts", "http")

    def __init__(self, tracer: trace.Tracer, info: RetryInfo) -> None:
        self._tracer = tracer
        self._info = info
        self.attempts = 0
        self.http = False  # the last attempt was an HTTP request

    def __enter__(self) -> trace.Span:
        info = self._info
        attributes: dict[str, Any] = {
            "pynector.transport": info.transport_type,
            "pynector.retry.max_retries": info.max_retries,
        }
        self._open(self._tracer, "pynector.retry", SpanKind.INTERNAL, attributes)
        self._retry = _RETRY.set(self)
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._span.set_attribute("pynector.retry.attempts", self.attempts)
            if exc is not None:
                _fail(self._span, exc, self.http)
        finally:
            _RETRY.reset(self._retry)
            self._close()


class _BatchScope(_Scope):
    __slots__ = ("_batch", "_info", "_tracer", "http")

    def __init__(self, tracer: trace.Tracer, info: BatchInfo) -> None:
        self._tracer = tracer
        self._info = info
        self.http = False  # its requests are HTTP requests

    def __enter__(self) -> trace.Span:
        info = self._info
        attributes: dict[str, Any] = {
            "pynector.transport": info.transport_type,
            "pynector.batch.max_concurrency": info.max_concurrency,
        }
        if info.size is not None:
            attributes["pynector.batch.size"] = info.size
        if info.timeout is not None:
            attributes["pynector.batch.timeout"] = info.timeout
        self._open(self._tracer, "pynector.batch", SpanKind.INTERNAL, attributes)
        self._batch = _BATCH.set(self)
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stats = self._info.stats
        try:
            self._span.set_attributes({f"pynector.batch.{k}": v for k, v in stats.items()})
            if exc is not None:
                _fail(self._span, exc, self.http)
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug(
                    "batch of %s requests: %s succeeded, %s failed in %.1f ms",
                    stats.get("total", "?"),
                    stats.get("succeeded", "?"),
                    stats.get("failed", "?"),
                    self._elapsed_ms(),
                )
        finally:
            _BATCH.reset(self._batch)
            self._close()


class OtelPlugin:
    """The OpenTelemetry plugin: register an instance (the package ships one as ``plugin``).

    Installed, ``pynector_otel.plugin`` is loaded through the ``pynector.plugins``
    entry point; change its settings with :meth:`configure`.

    Args:
        tracer_provider: Where spans go; defaults to the global tracer provider.
        meter_provider: Where metrics go; defaults to the global meter provider.
        capture_message_content: Record GenAI message content (prompts and
            completions) on spans. Off unless ``True`` or, when ``None``, the
            environment variable ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
            is ``SPAN_ONLY`` or ``SPAN_AND_EVENT`` (the modes of the
            OpenTelemetry GenAI instrumentations, any case) or ``true``.
        request_headers: HTTP request headers to record as
            ``http.request.header.<name>``; ``None`` reads the comma list in
            ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST``.
            Names that can carry a credential (Authorization, cookies, API keys,
            tokens, ...) are never recorded.
        response_headers: The same for response headers
            (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE``).
    """

    pynector_telemetry = True
    """A telemetry plugin: clients with ``enable_telemetry=False`` never call it."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        capture_message_content: bool | None = None,
        request_headers: Iterable[str] | None = None,
        response_headers: Iterable[str] | None = None,
    ) -> None:
        self.request_headers: frozenset[str] = frozenset()
        self.response_headers: frozenset[str] = frozenset()
        self.capture_message_content = False
        self._provider: trace.TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        self._provider_from_env = False
        self._meter_provider: metrics.MeterProvider | None = None
        self._metrics: Instruments | None = None
        self._meter_from_env = False
        self._explicit = False
        self.configure(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            capture_message_content=capture_message_content,
            request_headers=request_headers,
            response_headers=response_headers,
        )

    def configure(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        capture_message_content: bool | None = None,
        request_headers: Iterable[str] | None = None,
        response_headers: Iterable[str] | None = None,
    ) -> None:
        """Replace every setting; see the class for the arguments and their defaults."""
        if capture_message_content is None:
            capture_message_content = _capture_mode(os.environ.get(CAPTURE_CONTENT_ENV, ""))
        if request_headers is None:
            request_headers = _env_list(REQUEST_HEADERS_ENV)
        if response_headers is None:
            response_headers = _env_list(RESPONSE_HEADERS_ENV)
        self.capture_message_content = bool(capture_message_content)
        self.request_headers = _allow_list("request_headers", request_headers)
        self.response_headers = _allow_list("response_headers", response_headers)
        self._provider = tracer_provider
        self._provider_from_env = _PROVIDER_ENV in os.environ
        self._tracer = None
        self._meter_provider = meter_provider
        self._meter_from_env = _METER_PROVIDER_ENV in os.environ
        self._metrics = None
        # A provider given or named by the environment: the global ones are not all.
        self._explicit = (
            tracer_provider is not None
            or meter_provider is not None
            or self._provider_from_env
            or self._meter_from_env
        )

    def __repr__(self) -> str:
        return (
            f"<OtelPlugin capture_message_content={self.capture_message_content} "
            f"request_headers={sorted(self.request_headers)} "
            f"response_headers={sorted(self.response_headers)}>"
        )

    def _active_tracer(self) -> trace.Tracer | None:
        """The tracer to use, or ``None`` when there is nowhere for the data to go."""
        provider = self._provider or trace.get_tracer_provider()
        if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            self._tracer = provider.get_tracer("pynector_otel", __version__, SCHEMA_URL)
            return self._tracer
        if _log.isEnabledFor(logging.DEBUG):
            return _NOOP_TRACER  # no spans, but the request log lines
        return None

    def _active_metrics(self) -> Instruments | None:
        """The instruments to record into, or ``None`` when no meter provider is set."""
        provider = self._meter_provider
        if provider is None:
            if not self._meter_from_env and no_global_meter_provider():
                return None
            provider = metrics.get_meter_provider()
            if isinstance(provider, metrics.NoOpMeterProvider) or no_global_meter_provider():
                return None
        self._metrics = Instruments(provider)
        return self._metrics

    def pynector_telemetry_active(self) -> bool:
        """Whether there is anywhere for data to go right now (asked on every call).

        True with a tracer provider other than the API's no-op one, or with
        the ``pynector.otel`` logger enabled for DEBUG (the request log lines).
        When it is false, the client leaves this plugin out of the call, so
        having it installed without an SDK costs close to nothing.
        """
        if self._tracer is not None or self._metrics is not None:
            return True
        if not self._explicit and _no_global_provider() and no_global_meter_provider():
            return _log.isEnabledFor(logging.DEBUG)  # nowhere for spans or metrics to go
        if self._active_metrics() is not None:
            return True
        return self._active_tracer() is not None

    def _tracer_for(self, telemetry: bool) -> trace.Tracer | None:
        """The tracer for a client's call, or ``None`` when it is not to be traced."""
        if not telemetry:
            return None
        tracer = self._tracer or self._active_tracer()
        if tracer is None and (self._metrics or self._active_metrics()) is not None:
            return _NOOP_TRACER  # metrics only: the scopes run, the spans record nothing
        return tracer

    def _instruments(self) -> Instruments | None:
        return self._metrics or self._active_metrics()

    # -- hooks -----------------------------------------------------------------

    @pynector.hookimpl
    def pynector_request(self, info: RequestInfo) -> _RequestScope | None:
        """Wrap one attempt in a CLIENT span (HTTP or GenAI conventions)."""
        tracer = self._tracer_for(info.telemetry)
        if tracer is None:
            return None
        return _RequestScope(self, tracer, self._instruments(), info)

    @pynector.hookimpl
    def pynector_request_hop(self, info: RequestInfo) -> None:
        """A redirect: end the hop's span and start the next hop's."""
        ref = _REQUEST.get()
        scope = None if ref is None else ref()
        if scope is not None and scope._info is info:
            scope.hop()

    @pynector.hookimpl
    def pynector_retry(self, info: RetryInfo) -> _RetryScope | None:
        """Wrap a whole ``request_with_retry`` in a ``pynector.retry`` span."""
        tracer = self._tracer_for(info.telemetry)
        return None if tracer is None else _RetryScope(tracer, info)

    @pynector.hookimpl
    def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
        """Note the wait on the current span and hand it to the next attempt's span."""
        if not info.telemetry:
            return
        _PENDING_WAIT.set(info)
        instruments = self._instruments()
        if instruments is not None:
            scope = _RETRY.get() or _BATCH.get()
            http = scope is not None and scope.http
            instruments.record_retry(info.transport_type, error_type(info.error, http), info.reason)
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "pynector.retry.wait",
                {
                    "pynector.attempt": info.attempt,
                    "pynector.retry.delay": info.delay,
                    "pynector.retry.reason": info.reason,
                    "error.type": error_type(info.error),
                },
            )

    @pynector.hookimpl
    def pynector_batch(self, info: BatchInfo) -> _BatchScope | None:
        """Wrap a ``batch_request`` in a ``pynector.batch`` span, the parent of its requests."""
        tracer = self._tracer_for(info.telemetry)
        return None if tracer is None else _BatchScope(tracer, info)

    @pynector.hookimpl
    def pynector_batch_progress(self, info: BatchInfo, error: BaseException | None) -> None:
        """Count one finished request of a batch in ``pynector.batch.requests``."""
        if info.telemetry:
            instruments = self._instruments()
            if instruments is not None:
                instruments.record_batch_request(info.transport_type, error is not None)

    @pynector.hookimpl
    def pynector_headers(self, headers: dict[str, str]) -> None:
        """Add the W3C trace context of the current attempt's span (``traceparent``, ...).

        Headers another plugin already set are kept; the transport keeps the
        caller's own over all of them.
        """
        if _INJECT.get():
            carrier: dict[str, str] = {}
            _propagate().inject(carrier)
            for name, value in carrier.items():
                headers.setdefault(name, value)  # another plugin's value wins

    @pynector.hookimpl
    def pynector_configure_telemetry(self, service_name: str, log_level: str) -> None:
        """Set up log correlation and, with the SDK installed, a tracer provider."""
        from ._setup import configure

        configure(service_name, log_level)
        self._tracer = None
        self._metrics = None
