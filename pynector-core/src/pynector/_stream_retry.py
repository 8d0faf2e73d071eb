"""Streams that recover: a stream's opening is retried until its first item is read.

``client.stream(data, max_retries=N)`` opens the stream, then reads its first
item before handing the stream to the caller. An error in either step (a
refused connection, a 503, a connection that broke before the first byte, an
overload error a provider sends inside a 200 stream before any content) is
decided by the same :class:`~pynector.concurrency.RetryPolicy` as
``request_with_retry``: a retryable error is followed by a wait (backoff or the
server's Retry-After) and a new attempt, each a stream of its own. Once an
item exists nothing is retried: the caller may already have acted on it, so a
later error propagates as it is.

The caller sees one stream: :class:`RecoveredStream` puts the first item back
in front of the rest, and forwards every other attribute (HTTP:
``status_code``, ``headers``) to the stream of the attempt that succeeded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from .concurrency import RetryDecision, RetryPolicy, remaining_time
from .errors import PynectorError

__all__ = ["RecoveredStream", "recovering"]

OpenAttempt = Callable[[int], AbstractAsyncContextManager[AsyncIterator[Any]]]
"""Opens attempt number ``n`` (1-based) of a stream; leaving it closes that attempt."""

NoteRetry = Callable[[int, PynectorError, RetryDecision], None]
"""Told of each retry before its wait: ``(failed attempt, error, decision)``."""

HoldsBack = Callable[[object], bool]
"""Whether a stream item carries no content yet (the transport's ``holds_back``)."""

_HELD_AT_MOST = 16  # preamble items read ahead before the stream is handed over anyway


class RecoveredStream:
    """The stream of the attempt that succeeded, with the items read ahead put back in front.

    Iterating it yields the items read while the stream was being opened (its
    first item, and any preamble before it), then the rest of that attempt's
    stream. Any other attribute is the underlying stream's (HTTP:
    ``status_code``, ``headers``, ``url``); ``aread()`` of a bytes stream
    includes the items read ahead.

    Attributes:
        attempts: How many attempts it took to open (1 when the first succeeded).
    """

    __slots__ = ("_ended", "_held", "_inner", "attempts")

    def __init__(
        self, inner: AsyncIterator[Any], held: list[Any], ended: bool, attempts: int
    ) -> None:
        self._inner = inner
        self._held = held  # read ahead, not yet handed out
        self._ended = ended  # the stream ended while it was read ahead
        self.attempts = attempts

    def __aiter__(self) -> RecoveredStream:
        return self

    async def __anext__(self) -> Any:
        if self._held:
            return self._held.pop(0)
        if self._ended:
            raise StopAsyncIteration  # not read a second time
        return await self._inner.__anext__()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name == "aread" and (self._held or self._ended):
            return self._aread
        return value

    async def _aread(self) -> Any:
        held, self._held = self._held, []
        start = b"".join(held)
        if self._ended:
            return start
        rest = await self._inner.aread()  # type: ignore[attr-defined]
        return start + rest

    def __repr__(self) -> str:
        return f"<RecoveredStream attempts={self.attempts} of {self._inner!r}>"


async def _read_ahead(
    iterator: AsyncIterator[Any], holds_back: HoldsBack
) -> tuple[list[Any], bool]:
    """The first item and any preamble before it: ``(items, ended)``."""
    held: list[Any] = []
    while True:
        try:
            item = await iterator.__anext__()
        except StopAsyncIteration:
            return held, True
        held.append(item)
        if not holds_back(item) or len(held) >= _HELD_AT_MOST:
            return held, False


@asynccontextmanager
async def recovering(
    open_attempt: OpenAttempt,
    policy: RetryPolicy,
    note_retry: NoteRetry,
    holds_back: HoldsBack = lambda item: False,
) -> AsyncIterator[RecoveredStream]:
    """Open a stream and read its first item, retrying both under ``policy``.

    Args:
        open_attempt: Opens one attempt of the stream (its limits, deadline and
            plugins included); called with the attempt number.
        policy: Which errors are retried and how long to wait before each retry.
        note_retry: Called before each wait (the client logs it and tells plugins).
        holds_back: True for an item that carries no content yet: reading goes
            on past it (up to 16 items), so an error after it is still retried.

    Yields:
        The stream of the attempt that opened and produced a first item (or
        ended without any). Errors after that propagate.

    Raises:
        PynectorError: The last attempt's error, when it is not retryable, the
            retries are used up, or the wait would pass the caller's deadline.
    """
    attempt = 1
    while True:
        opened = False
        try:
            # The attempt's own block is left with its error, so that its plugins
            # (a tracing span) see it fail; it is closed before the wait.
            async with open_attempt(attempt) as iterator:
                held, ended = await _read_ahead(iterator, holds_back)
                opened = True
                yield RecoveredStream(iterator, held, ended, attempt)
            return
        except PynectorError as exc:
            if opened:
                raise  # an item exists: the caller may have acted on it
            decision = policy.decide(attempt, exc, remaining_time())
            if decision is None:
                raise
            note_retry(attempt, exc, decision)
        await anyio.sleep(decision.delay)
        attempt += 1
