"""Iterating an SDK stream with its errors translated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ._errors import ErrorMap
from ._semconv import StreamUsage

__all__ = ["EventStream"]

# Events an abandoned stream may still hold decoded in memory; see ``finish``.
_MAX_LEFTOVER = 10_000


class EventStream:
    """The SDK's stream events, one by one; SDK errors become pynector errors.

    The SDK stream itself stays reachable as :attr:`sdk_stream` (for helpers
    such as anthropic's ``get_final_message()``); the transport closes it when
    the ``stream(...)`` block is left.
    """

    __slots__ = ("_done", "_errors", "_next", "_operation", "_usage", "sdk_stream")

    def __init__(
        self,
        sdk_stream: Any,
        errors: ErrorMap,
        operation: str,
        usage: StreamUsage | None = None,
    ) -> None:
        self.sdk_stream = sdk_stream
        # The SDK streams' own ``__anext__``: their ``__aiter__`` is one more async
        # generator that would be left open when the block is left early.
        step = getattr(sdk_stream, "__anext__", None)
        if step is None:
            iterator: AsyncIterator[Any] = sdk_stream.__aiter__()
            step = iterator.__anext__
        self._next: Callable[[], Awaitable[Any]] = step
        self._errors = errors
        self._operation = operation
        self._usage = usage
        self._done = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Any:
        try:
            with self._errors.around(self._operation, calling=False):
                event = await self._next()
        except Exception:  # StopAsyncIteration included: the stream is over either way
            self._done = True
            raise
        if self._usage is not None:
            self._usage.observe(event)
        return event

    async def finish(self) -> None:
        """Run the SDK's generators to their end once the stream is closed.

        Closing an SDK stream closes its HTTP response but leaves the SDK's
        internal async generators suspended; trio warns when it collects them.
        Stepping them once more ends them at once (the response is closed, so
        reading raises inside the SDK), without any network I/O.
        """
        for _ in range(_MAX_LEFTOVER):
            if self._done:
                return
            try:
                await self._next()
            except Exception:
                self._done = True
        self._done = True

    def __repr__(self) -> str:
        return (
            f"<EventStream operation={self._operation!r} "
            f"sdk_stream={type(self.sdk_stream).__name__}>"
        )
