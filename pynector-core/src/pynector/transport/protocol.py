"""The transport protocol every pynector transport implements.

A third-party transport needs only the four methods of :class:`Transport`:
``connect``, ``disconnect``, ``send`` and ``receive``. The client then runs one
``send`` + ``receive`` exchange at a time on it, so concurrent callers never see
each other's replies.

A transport that can serve concurrent callers by itself also provides
``request(data, **options)`` and, optionally, ``stream(data, **options)``
(:class:`StreamingTransport`); the client uses them when present. The built-in
HTTP and SDK transports do.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

__all__ = ["StreamingTransport", "Transport"]


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
