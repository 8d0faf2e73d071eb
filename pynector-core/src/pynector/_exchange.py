"""Run a four-method transport one exchange at a time.

A transport with only ``send`` and ``receive`` has one channel: two callers
interleaving on it would read each other's replies. :class:`ExchangeAdapter`
serialises exchanges, and resets the channel (disconnect + connect) after an
exchange that did not finish cleanly, so a late reply never reaches the next
caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .transport.protocol import Transport

__all__ = ["ExchangeAdapter", "join_reply"]


def join_reply(items: list[Any]) -> Any:
    """Turn the items of one reply into the request's result.

    ``bytes`` chunks are joined into one ``bytes``; a single other item is
    returned as is; no item gives ``None``; several mixed items give the list.
    """
    if len(items) == 1:
        item = items[0]
        return bytes(item) if isinstance(item, bytearray | memoryview) else item
    if not items:
        return None
    if all(isinstance(item, bytes | bytearray | memoryview) for item in items):
        return b"".join(items)
    return items


class _TrackedIterator:
    """Wraps ``receive()`` to know whether the reply was read to the end."""

    __slots__ = ("_inner", "exhausted")

    def __init__(self, inner: AsyncIterator[Any]) -> None:
        self._inner = inner
        self.exhausted = False

    def __aiter__(self) -> _TrackedIterator:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except StopAsyncIteration:
            self.exhausted = True
            raise

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()


class ExchangeAdapter:
    """Gives a four-method transport the ``request``/``stream`` interface.

    Args:
        transport: The transport; the adapter does not connect it, the client does.
    """

    __slots__ = ("_dirty", "_lock", "transport")

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._lock: anyio.Lock | None = None
        self._dirty = False

    async def connect(self) -> None:
        """Connect the transport."""
        await self.transport.connect()

    async def disconnect(self) -> None:
        """Disconnect the transport."""
        await self.transport.disconnect()

    @asynccontextmanager
    async def _exchange(
        self, data: Any, options: dict[str, Any]
    ) -> AsyncIterator[_TrackedIterator]:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._dirty:
                # The last exchange was cut short: its reply may still arrive.
                await self.transport.disconnect()
                await self.transport.connect()
            self._dirty = True
            await self.transport.send(data, **options)
            reply = _TrackedIterator(self.transport.receive())
            try:
                yield reply
            finally:
                with anyio.CancelScope(shield=True):
                    await reply.aclose()
            self._dirty = not reply.exhausted

    async def request(self, data: Any, **options: Any) -> Any:
        """Send ``data`` and collect the whole reply."""
        async with self._exchange(data, options) as reply:
            items = [item async for item in reply]
        return join_reply(items)

    @asynccontextmanager
    async def stream(self, data: Any, **options: Any) -> AsyncIterator[AsyncIterator[Any]]:
        """Send ``data`` and yield the reply's items as they arrive."""
        async with self._exchange(data, options) as reply:
            yield reply
