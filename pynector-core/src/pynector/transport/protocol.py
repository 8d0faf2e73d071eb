"""The transport protocols: what a pynector transport implements.

Two forms are declared here, and the client knows which one it has from the
class, never by probing for methods:

* :class:`Transport`, the seed's minimal contract: ``connect``, ``disconnect``,
  ``send`` and ``receive``. Subclass it (or implement the four methods on any
  class). The client runs one ``send`` + ``receive`` exchange at a time on it,
  so concurrent callers never see each other's replies, and reconnects after
  an exchange that did not finish.
* :class:`CallTransport`, a full transport, which serves concurrent callers by
  itself: ``handle_request(call)`` and ``handle_stream(call)`` take the
  :class:`~pynector.call.Call` of one attempt (its data, options and deadline)
  and report on it what the transport learnt (URL, server, status, usage, span
  attributes). It also says whether a call may be replayed, which key a limiter
  or breaker should group it under, and what it will cost in tokens. A class
  is a full transport when it derives from :class:`CallTransport`; the built-in
  HTTP and SDK transports do.

A class that derives from neither but has ``request(data, **options)`` (and
perhaps ``stream``) is the 0.2 form; the client still runs it, through the same
adapter as the four-method form.

:class:`LifecycleMixin` adds ``aclose()`` and ``async with transport:`` on top
of a transport's own ``connect`` and ``disconnect``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from pynector.call import Call

__all__ = ["CallTransport", "LifecycleMixin", "StreamingTransport", "Transport"]

RequestT = TypeVar("RequestT")
"""The type of a transport's request data (HTTP: :class:`pynector_http.HTTPRequest`)."""
ReplyT = TypeVar("ReplyT", covariant=True)
"""The type of a transport's reply (HTTP: :class:`pynector_http.Response`)."""


@runtime_checkable
class Transport(Protocol):
    """The minimal contract: connect, disconnect, send, receive.

    Subclass it (as the examples do) or implement the four methods on any class.
    ``receive`` is an async iterator of reply items: ``bytes`` chunks are joined
    into one ``bytes`` result, a single other item is returned as is.
    """

    @abstractmethod
    async def connect(self) -> None:
        """Open the channel. Called once before first use, and again after a reset."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Close the channel and release its resources. Must be safe to call twice."""

    @abstractmethod
    async def send(self, data: Any, **options: Any) -> None:
        """Send one request."""

    @abstractmethod
    def receive(self) -> AsyncIterator[Any]:
        """Yield the reply to the last request sent, item by item."""


@runtime_checkable
class StreamingTransport(Transport, Protocol):
    """The 0.2 form of a concurrent transport: ``request(data, **options)``, ``stream``.

    Still run by the client (one call at a time is not enforced: the transport
    serves concurrent callers itself); new transports derive from
    :class:`CallTransport`, which also receives the call's deadline and reports
    what it learnt.

    ``request`` returns one complete reply; ``stream`` is an async context
    manager yielding an async iterator of reply items (body chunks, SDK events).
    """

    @abstractmethod
    async def request(self, data: Any, **options: Any) -> Any:
        """Send one request and return its complete reply."""

    @abstractmethod
    def stream(self, data: Any, **options: Any) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        """Open a streamed reply; leaving the context releases it."""


class CallTransport(Protocol[RequestT, ReplyT]):
    """A full transport: one attempt at a time is a :class:`~pynector.call.Call`.

    Derive from it to declare a full transport (``class MyTransport(CallTransport[
    MyRequest, MyReply])``); the methods with a body here are defaults a
    transport overrides when it knows better. Every method may be called
    concurrently.

    Attributes:
        transport_type: The name the transport reports in calls and spans when
            it was not created by name (``Pynector(transport=...)``).
        client_settings: The client settings (``"max_connections"``,
            ``"max_response_size"``) the factory accepts as options: a client
            creating the transport by name passes them unless the caller gave
            the option.
        handles_deadline: ``True`` when :meth:`handle_request` enforces
            ``call.deadline`` itself (raising :class:`pynector.TimeoutError`,
            ``retryable`` only if :meth:`replayable`): the client then sets no
            cancel scope of its own around it, which costs less. Read on every
            call, after the transport is connected.
    """

    transport_type: ClassVar[str] = "custom"
    client_settings: ClassVar[frozenset[str]] = frozenset()

    @property
    def handles_deadline(self) -> bool:
        """Whether :meth:`handle_request` enforces the call's deadline (default ``False``)."""
        return False

    @abstractmethod
    async def connect(self) -> None:
        """Open the transport (a connection pool, an SDK client). Called once, before first use."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Release the transport's resources. Must be safe to call twice."""

    @abstractmethod
    async def handle_request(self, call: Call[RequestT]) -> ReplyT:
        """Send ``call.data`` with ``call.options``; return the complete reply.

        Report on ``call`` what is learnt on the way (``url``, ``server_address``,
        ``server_port``, ``status``, ``usage``, ``span_name``, ``attributes``,
        ``request_headers``, ``response_headers``), also when failing. Raise
        :mod:`pynector.errors` errors (a builtin ``OSError`` or ``TimeoutError``
        is translated by the client).
        """

    def handle_stream(
        self, call: Call[RequestT]
    ) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        """Open a streamed reply; leaving the context releases it.

        The default refuses: a transport that can stream overrides it.

        Raises:
            ConfigurationError: This transport cannot stream.
        """
        from pynector.errors import ConfigurationError

        raise ConfigurationError(
            f"transport {type(self).__name__} cannot stream; use client.request(...) instead"
        )

    def replayable(self, call: Call[RequestT]) -> bool:
        """Whether ``call`` may be sent again when its outcome is unknown.

        Asked when a deadline cut the call short after it may have reached the
        server. The default, ``False``, never sends a call twice unless the
        transport knows it is safe (HTTP: an idempotent method, an
        ``Idempotency-Key``).
        """
        return False

    def holds_back(self, item: object) -> bool:
        """Whether a stream item carries no content yet (a preamble), so a retry is still safe.

        ``client.stream(..., max_retries=N)`` reads past such items before it
        hands the stream over, so that an error right after them (Anthropic's
        ``overloaded_error`` after ``message_start``) is still retried. The
        default, ``False``: the first item is content.
        """
        return False

    def limit_key(self, call: Call[RequestT]) -> str | None:
        """The key a rate limiter or circuit breaker groups ``call`` under; never a secret.

        The default, ``None``, lets the client use the transport type.
        """
        return None

    def estimate_tokens(self, call: Call[RequestT]) -> int | None:
        """The most tokens ``call`` can cost (prompt + ``max_tokens``), before it is sent.

        A token budget reserves this, then corrects it to ``call.usage``. The
        default, ``None``: the call is not charged to a token budget.
        """
        return None


class LifecycleMixin:
    """``aclose()`` and ``async with`` for a transport, from its ``connect``/``disconnect``.

    ``async with transport:`` connects the transport and disconnects it on the
    way out, even after an error; ``aclose()`` is the same as ``disconnect()``.
    For code that uses a transport on its own: a client given the transport
    connects and disconnects it by itself. The built-in HTTP and SDK
    transports use it::

        class MyTransport(LifecycleMixin, Transport):
            async def connect(self) -> None: ...
            async def disconnect(self) -> None: ...

            ...  # send and receive

        async with MyTransport() as transport:  # connect(), then disconnect()
            await transport.send(b"ping")
    """

    __slots__ = ()

    if TYPE_CHECKING:  # provided by the class the mixin is combined with

        @abstractmethod
        async def connect(self) -> None: ...

        @abstractmethod
        async def disconnect(self) -> None: ...

    async def aclose(self) -> None:
        """Same as ``disconnect()``."""
        await self.disconnect()

    async def __aenter__(self) -> Self:
        """Connect, and return the transport."""
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Disconnect; an exception from the block propagates."""
        await self.disconnect()
