"""The transport protocol every pynector transport implements.

A third-party transport needs only the four methods of :class:`Transport`:
``connect``, ``disconnect``, ``send`` and ``receive``. The client then runs one
``send`` + ``receive`` exchange at a time on it, so concurrent callers never see
each other's replies.

A transport that can serve concurrent callers by itself also provides
``request(data, **options)`` and, optionally, ``stream(data, **options)``
(:class:`StreamingTransport`); the client uses them when present. The built-in
HTTP and SDK transports do.

:class:`LifecycleMixin` adds ``aclose()`` and ``async with transport:`` on top
of a transport's own ``connect`` and ``disconnect``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

__all__ = ["LifecycleMixin", "StreamingTransport", "Transport"]


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
    """A transport that serves concurrent callers itself.

    ``request`` returns one complete reply; ``stream`` is an async context
    manager yielding an async iterator of reply items (body chunks, SDK events).
    """

    @abstractmethod
    async def request(self, data: Any, **options: Any) -> Any:
        """Send one request and return its complete reply."""

    @abstractmethod
    def stream(self, data: Any, **options: Any) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        """Open a streamed reply; leaving the context releases it."""


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
