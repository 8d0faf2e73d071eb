"""Iterating an SDK stream with its errors translated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from types import AsyncGeneratorType
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

    __slots__ = ("_done", "_errors", "_failure", "_next", "_operation", "_usage", "sdk_stream")

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
        self._failure: BaseException | None = None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Any:
        try:
            with self._errors.around(self._operation, calling=False):
                event = await self._next()
        except StopAsyncIteration:
            self._done = True
            raise
        except Exception as exc:  # the stream is over either way
            self._done = True
            self._failure = exc.__cause__ or exc  # the SDK's own, with its frames
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
                break
            try:
                await self._next()
            except Exception:
                self._done = True
        self._done = True
        failure, self._failure = self._failure, None
        if failure is not None:
            await _finish_left_behind(failure)

    def __repr__(self) -> str:
        return (
            f"<EventStream operation={self._operation!r} "
            f"sdk_stream={type(self.sdk_stream).__name__}>"
        )


async def _finish_left_behind(failure: BaseException) -> None:
    """End the SDK generators that an error inside its stream left suspended.

    An error event makes the SDK raise out of its ``async for`` over its own
    event and byte generators, which stay suspended (trio warns when it
    collects them). They are held by the frames of the error's traceback;
    stepping each once more ends the chain at once, as in
    :meth:`EventStream.finish`: the response is closed.
    """
    traceback = failure.__traceback__
    while traceback is not None:
        for value in list(traceback.tb_frame.f_locals.values()):
            if isinstance(value, AsyncGeneratorType) and value.ag_frame is not None:
                for _ in range(_MAX_LEFTOVER):
                    if value.ag_frame is None or value.ag_running:
                        break
                    try:
                        await value.__anext__()
                    except Exception:  # its end, however it ends
                        break
        traceback = traceback.tb_next
