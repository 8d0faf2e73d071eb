"""Run the older transport forms as full transports.

A transport with only ``send`` and ``receive`` has one channel: two callers
interleaving on it would read each other's replies. :class:`ExchangeAdapter`
serialises exchanges, and resets the channel (disconnect + connect) after an
exchange that did not finish cleanly, so a late reply never reaches the next
caller. :class:`RequestAdapter` runs the 0.2 form, a transport with its own
concurrency-safe ``request(data, **options)`` (and ``stream``).

Both forms predate the call object. As in 0.2, a transport of either form may
say which requests are safe to send again with ``replayable(data, **options)``;
without it, a call cut short by its deadline may be retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .call import Call
from .errors import ConfigurationError
from .transport.protocol import CallTransport, StreamingTransport, Transport

__all__ = ["ExchangeAdapter", "RequestAdapter", "join_reply"]


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


class _Older(CallTransport[Any, Any]):
    """What both adapters share: the lifecycle and the 0.2 ``replayable``."""

    __slots__ = ("_replayable", "transport")

    transport: Any

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        # The 0.2 forms' optional method, read once here.
        replayable = getattr(transport, "replayable", None)
        self._replayable: Callable[..., bool] | None = replayable if callable(replayable) else None

    async def connect(self) -> None:
        """Connect the transport."""
        await self.transport.connect()

    async def disconnect(self) -> None:
        """Disconnect the transport."""
        await self.transport.disconnect()

    def replayable(self, call: Call[Any]) -> bool:
        """The transport's ``replayable(data, **options)``, or ``True`` (as in 0.2)."""
        replayable = self._replayable
        return True if replayable is None else bool(replayable(call.data, **call.options))


class ExchangeAdapter(_Older):
    """Gives a four-method transport the full protocol, one exchange at a time.

    Args:
        transport: The transport; the adapter does not connect it, the client does.
    """

    __slots__ = ("_dirty", "_lock")

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self._lock: anyio.Lock | None = None
        self._dirty = False

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

    async def handle_request(self, call: Call[Any]) -> Any:
        """Send ``call.data`` and collect the whole reply."""
        async with self._exchange(call.data, dict(call.options)) as reply:
            items = [item async for item in reply]
        return join_reply(items)

    @asynccontextmanager
    async def handle_stream(self, call: Call[Any]) -> AsyncIterator[AsyncIterator[Any]]:
        """Send ``call.data`` and yield the reply's items as they arrive."""
        async with self._exchange(call.data, dict(call.options)) as reply:
            yield reply


class RequestAdapter(_Older):
    """Gives a 0.2 transport (``request(data, **options)``, maybe ``stream``) the full protocol.

    Args:
        transport: The transport; the adapter does not connect it, the client does.
        streams: Whether the transport has ``stream``.
    """

    __slots__ = ("_streams",)

    def __init__(self, transport: StreamingTransport, streams: bool) -> None:
        super().__init__(transport)
        self._streams = streams

    async def handle_request(self, call: Call[Any]) -> Any:
        """``transport.request(data, **options)``."""
        return await self.transport.request(call.data, **call.options)

    def handle_stream(self, call: Call[Any]) -> Any:
        """``transport.stream(data, **options)``."""
        if not self._streams:
            raise ConfigurationError(
                f"transport {type(self.transport).__name__} has request() but no stream(); "
                "use client.request(...) instead"
            )
        return self.transport.stream(call.data, **call.options)
