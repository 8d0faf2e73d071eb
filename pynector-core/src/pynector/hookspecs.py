"""Hook specifications: how plugins join every request, retry and batch.

A plugin is a module or object with functions marked ``@pynector.hookimpl``,
published under the ``pynector.plugins`` entry-point group (or registered with
:func:`pynector.registry.register_plugin`). The ``pynector_batch``,
``pynector_retry`` and ``pynector_request`` hooks may return a context manager,
sync or async, that the client enters around the operation: a span, a log
scope, a rate limit or a cache. Return ``None`` to stay out of the way.

``pynector_cli_support`` is the one hook asked of a transport factory rather
than of the plugins: the command line asks it of the factory the
``pynector.transports`` entry point names, so a transport's distribution tells
``pynector request`` and ``pynector batch`` how to handle its requests and
replies without registering anything.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import pluggy

from .call import Call

__all__ = [
    "BatchInfo",
    "RequestInfo",
    "RetryInfo",
    "RetryWaitInfo",
    "TelemetryPlugin",
    "Wrapper",
    "hookimpl",
    "hookspec",
]

hookspec = pluggy.HookspecMarker("pynector")
"""Marks the hook specifications below (for pynector itself, not for plugins)."""

hookimpl = pluggy.HookimplMarker("pynector")
"""Marks a plugin's hook implementations: ``@pynector.hookimpl``."""

Wrapper = AbstractContextManager[Any] | AbstractAsyncContextManager[Any]
"""What a wrapping hook may return: a sync or async context manager."""


class TelemetryPlugin(Protocol):
    """What makes a plugin a telemetry plugin: two declared, optional attributes.

    A plugin whose class sets ``pynector_telemetry = True`` is left out of the
    calls of a client created with ``enable_telemetry=False`` (``call.telemetry``
    is false); so are the trace headers it adds. If it also has
    ``pynector_telemetry_active()``, the client asks it before every call and
    leaves it out while it answers ``False`` (no tracing SDK configured: then
    having it installed costs close to nothing). Other plugins take part in
    every call.
    """

    pynector_telemetry: ClassVar[bool]

    def pynector_telemetry_active(self) -> bool:
        """Whether there is anywhere for this plugin's data to go right now."""
        ...


RequestInfo = Call[Any]
"""What ``pynector_request`` receives: the attempt's :class:`~pynector.call.Call`.

The 0.2 name, kept for plugins written against it: ``info.transport_type``,
``info.data``, ``info.attempt``, ``info.result``, ... are all there, with what
the transport reported (``url``, ``status``, ``usage``, ``attributes``, ...).
"""


@dataclass(slots=True, frozen=True)
class RetryInfo:
    """A whole ``request_with_retry``, or a ``stream(..., max_retries=n)``: the attempts' parent.

    Attributes:
        transport_type: The transport's name.
        data: The request data.
        max_retries: How many retries are allowed after the first attempt.
        telemetry: The client's ``enable_telemetry`` setting.
    """

    transport_type: str
    data: Any = field(repr=False)  # carries credentials: kept out of the repr
    max_retries: int
    telemetry: bool = True


@dataclass(slots=True, frozen=True)
class RetryWaitInfo:
    """The decision taken after a failed attempt, before the next one.

    Attributes:
        attempt: The attempt that failed (1-based).
        error: The error it raised.
        delay: Seconds the client will wait before the next attempt.
        reason: ``"retry-after"`` when the server chose the wait, else ``"backoff"``.
        telemetry: The client's ``enable_telemetry`` setting.
        transport_type: The transport's name.
    """

    attempt: int
    error: BaseException
    delay: float
    reason: str
    telemetry: bool = True
    transport_type: str = "custom"


@dataclass(slots=True)
class BatchInfo:
    """One ``batch_request`` or ``batch`` run (the parent of its requests).

    Attributes:
        transport_type: The transport's name.
        size: The number of requests when known in advance, else ``None``.
        max_concurrency: How many requests may be in flight at once.
        timeout: The whole batch's deadline in seconds, or ``None``.
        telemetry: The client's ``enable_telemetry`` setting.
        stats: Filled by the client when the batch ends:
            ``{"total": n, "succeeded": n, "failed": n}``.
    """

    transport_type: str
    size: int | None
    max_concurrency: int
    timeout: float | None
    telemetry: bool = True
    stats: dict[str, int] = field(default_factory=dict)


@hookspec
def pynector_request(info: Call[Any]) -> Wrapper | None:
    """Wrap one attempt of one request; return a context manager or ``None``.

    ``info`` is the attempt's :class:`~pynector.call.Call`: read what the
    transport reported on it when the context manager exits.
    """


@hookspec
def pynector_request_hop(info: Call[Any]) -> None:
    """The attempt's request is about to be sent again (a redirect): one hop ended.

    Called inside the ``pynector_request`` wrappers, after the transport
    reported the hop that ended on ``info`` and before it clears that report
    for the next hop (:meth:`pynector.call.Call.next_hop`). A tracing plugin
    ends the hop's span here and starts the next hop's.
    """


@hookspec
def pynector_retry(info: RetryInfo) -> Wrapper | None:
    """Wrap a whole ``request_with_retry`` call; return a context manager or ``None``."""


@hookspec
def pynector_retry_wait(info: RetryWaitInfo) -> None:
    """Observe the wait chosen after a failed attempt, before the client sleeps."""


@hookspec
def pynector_batch(info: BatchInfo) -> Wrapper | None:
    """Wrap one ``batch_request`` or ``batch`` run; return a context manager or ``None``."""


@hookspec
def pynector_batch_progress(info: BatchInfo, error: BaseException | None) -> None:
    """Observe one request of a batch that ended: ``error`` is ``None`` when it succeeded.

    Called once per request (after its last attempt), in the task that ran
    it, inside the ``pynector_batch`` wrappers.
    """


@hookspec
def pynector_configure_telemetry(service_name: str, log_level: str) -> None:
    """Set up tracing and logging when the user calls ``configure_telemetry``."""


@hookspec
def pynector_headers(headers: dict[str, str]) -> None:
    """Add outgoing headers (for example W3C ``traceparent``) to a request.

    Transports that carry headers ask through
    :meth:`pynector.call.Call.trace_headers`, once per attempt, inside the
    ``pynector_request`` wrappers, so the current span is the attempt's span.
    """


@hookspec(firstresult=True)
def pynector_cli_support(transport_type: str) -> Any:
    """What the command line knows about a transport: a ``pynector.cli.CLISupport`` or ``None``.

    Implemented on the transport factory itself, as a static method (the
    ``@pynector.hookimpl`` marker is optional there); ``transport_type`` is the
    name it was chosen by. Typed ``Any`` here so that these specifications
    import nothing of the command line.
    """
