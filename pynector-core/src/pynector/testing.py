"""Test helpers for code that uses pynector.

:class:`MockTransport` stands in for a real transport in your own tests::

    from pynector import Pynector
    from pynector.testing import MockTransport

    def handler(data, **options):
        return {"echo": data}

    async with Pynector(transport=MockTransport(handler)) as client:
        assert await client.request({"q": 1}) == {"echo": {"q": 1}}
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.lowlevel

from pynector.call import Call
from pynector.transport.protocol import CallTransport

__all__ = ["MockCall", "MockTransport"]


@dataclass(frozen=True, slots=True)
class MockCall:
    """One call the mock received.

    Attributes:
        data: The request data.
        options: The per-request options.
        call: The :class:`~pynector.Call` of that attempt: its ``attempt``,
            ``timeout`` and ``deadline``, ``batch_index`` and ``streaming``.
            Not compared: ``MockCall(data, options)`` equals a recorded call
            with that data and those options.
    """

    data: Any
    options: dict[str, Any] = field(default_factory=dict)
    call: Call[Any] | None = field(default=None, compare=False)


async def _as_async_iter(value: Any) -> AsyncGenerator[Any, None]:
    if hasattr(value, "__aiter__"):
        try:
            async for item in value:
                yield item
        finally:
            if hasattr(value, "aclose"):
                await value.aclose()
    elif isinstance(value, bytes | bytearray | str | dict) or not hasattr(value, "__iter__"):
        yield value
    else:
        for item in value:
            yield item


class MockTransport(CallTransport[Any, Any]):
    """A full transport that answers with ``handler(data, **options)``.

    The handler may be sync or async; what it returns is the reply, what it
    raises is raised to the caller (raise :class:`pynector.errors.TransportError`
    with ``retryable=True`` to exercise retries). For a stream, a returned
    iterable or async iterable is yielded item by item.

    Every call may be replayed (:meth:`replayable` is ``True``): a call cut
    short by its deadline is retried by ``request_with_retry``. Subclass it and
    override :meth:`replayable` to test a transport that says otherwise.

    Use it through a client (``Pynector(transport=MockTransport(handler))``),
    or on its own with :meth:`request` and :meth:`stream`.

    Args:
        handler: ``handler(data, **options)`` returning the reply or raising.
        record: Keep every call in :attr:`calls` (turn off for huge batches).

    Attributes:
        calls: The calls received, in order (when ``record`` is true), as
            :class:`MockCall`; ``mock.calls[0].call.attempt`` is the attempt
            number, ``.call.deadline`` its deadline.
        call_count: How many calls were received.
        connect_count: How many times ``connect`` was called.
        disconnect_count: How many times ``disconnect`` was called.
    """

    def __init__(self, handler: Callable[..., Any], *, record: bool = True) -> None:
        if not callable(handler):
            raise TypeError(
                f"MockTransport(handler={handler!r}) needs a callable: "
                "MockTransport(lambda data, **options: {'ok': True})"
            )
        self._handler = handler
        self._record = record
        self.calls: list[MockCall] = []
        self.call_count = 0
        self.connect_count = 0
        self.disconnect_count = 0

    def __repr__(self) -> str:
        return f"MockTransport(calls={self.call_count})"

    @property
    def connected(self) -> bool:
        """Whether ``connect`` was called more often than ``disconnect``."""
        return self.connect_count > self.disconnect_count

    async def connect(self) -> None:
        """Count the connection."""
        self.connect_count += 1

    async def disconnect(self) -> None:
        """Count the disconnection."""
        self.disconnect_count += 1

    async def _answer(self, call: Call[Any]) -> Any:
        # Yield to the event loop like real I/O would, so timeouts and other
        # tasks get their turn even when the handler never awaits.
        await anyio.lowlevel.checkpoint()
        self.call_count += 1
        if self._record:
            self.calls.append(MockCall(call.data, dict(call.options), call))
        result = self._handler(call.data, **call.options)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def handle_request(self, call: Call[Any]) -> Any:
        """Return the handler's reply to ``call.data``."""
        return await self._answer(call)

    @asynccontextmanager
    async def handle_stream(self, call: Call[Any]) -> AsyncIterator[AsyncIterator[Any]]:
        """Yield the handler's reply to ``call.data`` item by item."""
        items = _as_async_iter(await self._answer(call))
        try:
            yield items
        finally:
            await items.aclose()

    def replayable(self, call: Call[Any]) -> bool:
        """``True``: a test double may answer any call twice."""
        return True

    async def request(self, data: Any, **options: Any) -> Any:
        """Return the handler's reply to ``data``, without a client (no deadline)."""
        return await self._answer(Call.standalone(data, options, transport=self))

    def stream(self, data: Any, **options: Any) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        """Yield the handler's reply to ``data`` item by item, without a client."""
        return self.handle_stream(Call.standalone(data, options, transport=self, streaming=True))
