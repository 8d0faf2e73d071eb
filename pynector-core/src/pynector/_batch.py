"""Batches: a fixed set of workers, each result reported as it finishes.

:func:`run_batch` is the engine. It pulls ``(data, options)`` pairs lazily,
sends each (with its retries) through the client's attempt, and reports every
finished request: into its slot of a list (``Pynector.batch_request``, input
order) and/or to an ``emit`` callback (``on_result``; :class:`BatchStream`, which
``Pynector.batch`` returns, yields them as they come).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator, Mapping, Sized
from types import TracebackType
from typing import Any, Generic, NoReturn, TypeVar

import anyio

from . import errors
from .concurrency import RetryDecision, RetryPolicy, WorkerPool, remaining_time
from .errors import ConfigurationError, PynectorError

__all__ = ["BatchResult", "BatchStream", "run_batch", "unpack"]

T = TypeVar("T")

#: ``emit(index, data, options, value, error, attempts, elapsed)``; it may return
#: an awaitable (the stream waits for room in its buffer), or ``None``.
Emit = Callable[[int, Any, Mapping[str, Any], Any, "Exception | None", int, float], Any]
#: The client's one attempt: ``attempt(data, timeout, options, attempt, batch_index)``.
Attempt = Callable[[Any, float, Mapping[str, Any], int, int], Awaitable[Any]]
#: Awaited before each attempt with ``(index, data, attempt)``: a token budget, a limiter.
BeforeAttempt = Callable[[int, Any, int], Awaitable[object]]


class BatchResult(Generic[T]):
    """One finished request of a batch, as :meth:`Pynector.batch` yields it. Read-only.

    Attributes:
        index: The request's position in the input, from 0.
        data: The request's data, as given (an id you put in it identifies it).
        options: The request's own options, as given (not the batch's ``**options``).
        value: The reply; ``None`` when the request failed.
        error: The exception the request ended with; ``None`` when it succeeded.
        attempts: Attempts made: 1 without retries; 0 when none was started
            (a sized input's requests that the batch deadline left unsent).
        elapsed: Seconds from the request's start (when a worker pulled it)
            to its result, retries and waits included.
    """

    __slots__ = ("attempts", "data", "elapsed", "error", "index", "options", "value")

    index: int
    data: Any
    options: Mapping[str, Any]
    value: T | None
    error: Exception | None
    attempts: int
    elapsed: float

    def __init__(
        self,
        index: int,
        data: Any,
        options: Mapping[str, Any],
        value: T | None,
        error: Exception | None,
        attempts: int,
        elapsed: float,
    ) -> None:
        init = object.__setattr__
        init(self, "index", index)
        init(self, "data", data)
        init(self, "options", options)
        init(self, "value", value)
        init(self, "error", error)
        init(self, "attempts", attempts)
        init(self, "elapsed", elapsed)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"BatchResult is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"BatchResult is read-only: cannot delete {name!r}")

    @property
    def ok(self) -> bool:
        """Whether the request succeeded (``error`` is ``None``)."""
        return self.error is None

    def __repr__(self) -> str:
        # Never the data, options or reply: they may carry credentials.
        outcome = "ok" if self.error is None else f"error={type(self.error).__name__}"
        return (
            f"<BatchResult index={self.index} {outcome} attempts={self.attempts} "
            f"elapsed={self.elapsed:.3f}s>"
        )


def _bad_request_item(index: int, item: object) -> NoReturn:
    # Never the item's repr: a request carries credentials (headers, keys in the URL).
    what = type(item).__name__
    if isinstance(item, Mapping):
        what += f" with keys {sorted(str(key) for key in item)}"
    elif isinstance(item, tuple):
        what += f" of {len(item)} items"
    raise ConfigurationError(
        f"batch_request: request {index} is {what}; each request must be a (data, options) "
        "tuple, e.g. ({'path': '/users/1'}, {})"
    )


def unpack(index: int, item: object) -> tuple[Any, Mapping[str, Any]]:
    """Split one batch item into ``(data, options)``; a clear error if it is not that."""
    if type(item) is not tuple or len(item) != 2:
        _bad_request_item(index, item)
    data, options = item
    if not isinstance(options, Mapping):
        _bad_request_item(index, item)
    return data, options


class _Unfinished:
    """What a batch deadline interrupted: the requests in flight and results not yet handed over."""

    __slots__ = ("cut", "unsent")

    def __init__(self) -> None:
        # (index, data, options, attempts, start) of each request cut short.
        self.cut: list[tuple[int, Any, Mapping[str, Any], int, float]] = []
        # Finished results whose emit was still waiting for room.
        self.unsent: list[
            tuple[int, Any, Mapping[str, Any], Any, Exception | None, int, float]
        ] = []


def _handler(
    emit: Emit | None,
    slots: list[Any] | None,
    attempt: Attempt,
    request_timeout: float,
    before_attempt: BeforeAttempt | None,
    retry_wait: Callable[[int, PynectorError], float],
    check: Callable[[Any], object],
    raise_on_error: bool,
    options: Mapping[str, Any],
    unfinished: _Unfinished,
) -> Callable[[int, Any], Awaitable[None]]:
    """The worker pool's handler: one request, its retries, its result reported.

    One coroutine with its names in closure cells: it runs once per request.
    """
    cancelled = anyio.get_cancelled_exc_class()
    clock = time.perf_counter
    timed = emit is not None  # only a reported result needs its time

    async def handle(index: int, item: Any) -> None:
        data, own = unpack(index, item)
        if slots is not None:
            slots.append(None)  # handlers start in index order: this is slots[index]
        merged = {**options, **own} if own else options
        start = clock() if timed else 0.0
        number = 1
        try:
            try:
                if data is None:
                    check(data)
                while True:
                    try:
                        if before_attempt is not None:
                            await before_attempt(index, data, number)
                        value = await attempt(data, request_timeout, merged, number, index)
                        break
                    except PynectorError as exc:
                        delay = retry_wait(number, exc)  # raises exc when it is not retried
                    await anyio.sleep(delay)
                    number += 1
            except Exception as exc:
                if raise_on_error:
                    raise
                if slots is not None:
                    slots[index] = exc
                value = None
                error: Exception | None = exc
            else:
                if slots is not None:
                    slots[index] = value
                error = None
        except BaseException as exc:
            # Cut short by the batch deadline or a cancellation from outside: on trio
            # the Cancelled may reach here inside an exception group from a nursery
            # of the transport, so anything that is not an error counts.
            if not isinstance(exc, Exception):
                unfinished.cut.append((index, data, own, number, start))
            raise
        if emit is None:
            return
        elapsed = clock() - start
        waiting = emit(index, data, own, value, error, number, elapsed)
        if waiting is not None:
            try:
                await waiting
            except cancelled:
                unfinished.unsent.append((index, data, own, value, error, number, elapsed))
                raise

    return handle


async def _report_expired(
    requests: Iterable[Any],
    rest: Iterator[Any],
    unfinished: _Unfinished,
    expired: errors.TimeoutError,
    emit: Emit | None,
    slots: list[Any] | None,
) -> None:
    """After the batch deadline: report what finished meanwhile, then the timed-out rest."""

    async def report(
        index: int, data: Any, own: Mapping[str, Any], attempts: int, took: float
    ) -> None:
        if slots is not None:
            if index == len(slots):
                slots.append(None)
            slots[index] = expired
        if emit is not None:
            waiting = emit(index, data, own, None, expired, attempts, took)
            if waiting is not None:
                await waiting

    if emit is not None:
        for result in unfinished.unsent:
            waiting = emit(*result)
            if waiting is not None:
                await waiting
    now = time.perf_counter()
    for index, data, own, number, start in sorted(unfinished.cut, key=lambda entry: entry[0]):
        await report(index, data, own, number, now - start if emit is not None else 0.0)
    if isinstance(requests, Sized) and not hasattr(requests, "__next__"):  # not an iterator
        left = list(rest)
        for index, item in enumerate(left, len(requests) - len(left)):
            data, own = unpack(index, item)
            await report(index, data, own, 0, 0.0)


async def run_batch(
    requests: Iterable[Any] | AsyncIterable[Any],
    pool: WorkerPool,
    emit: Emit | None,
    *,
    slots: list[Any] | None = None,
    attempt: Attempt,
    check: Callable[[Any], object],
    note_retry: Callable[[int, PynectorError, RetryDecision], None],
    request_timeout: float,
    batch_timeout: float | None,
    raise_on_error: bool,
    policy: RetryPolicy | None,
    before_attempt: BeforeAttempt | None,
    options: Mapping[str, Any],
) -> None:
    """Send every request; report each one as it finishes.

    A finished request's reply (or error) goes into ``slots[index]`` when a
    list is given (``batch_request``; the list grows as requests are pulled),
    and to ``emit`` when one is given (``batch``, ``on_result``).

    With ``raise_on_error`` the first error is raised itself (the rest are
    cancelled) and not reported. When ``batch_timeout`` expires, the requests
    in flight, and for a sized input the ones not pulled yet, are reported with
    one shared :class:`~pynector.errors.TimeoutError` (or it is raised with
    ``raise_on_error``); an iterator keeps the requests not pulled yet. Errors
    of ``emit`` itself and malformed items stop the batch and are raised.
    """

    def retry_wait(number: int, error: PynectorError) -> float:
        decision = None if policy is None else policy.decide(number, error, remaining_time())
        if decision is None:
            raise error
        note_retry(number, error, decision)
        return decision.delay

    unfinished = _Unfinished()
    handle = _handler(
        emit,
        slots,
        attempt,
        request_timeout,
        before_attempt,
        retry_wait,
        check,
        raise_on_error,
        options,
        unfinished,
    )
    source: Iterator[Any] | AsyncIterable[Any] = (
        requests if isinstance(requests, AsyncIterable) else iter(requests)
    )
    with anyio.move_on_after(batch_timeout) as scope:
        await pool.run(source, handle)
    if not scope.cancelled_caught:
        return
    expired = errors.TimeoutError(
        f"batch timed out after {batch_timeout:g} s with "
        f"{len(unfinished.cut) + len(unfinished.unsent)} requests unfinished; pass a larger "
        "timeout=... to the batch",
        timeout=batch_timeout,
    )
    if raise_on_error:
        raise expired
    if isinstance(requests, AsyncIterable) or isinstance(source, AsyncIterable):
        await _report_expired((), iter(()), unfinished, expired, emit, slots)
        return
    await _report_expired(requests, source, unfinished, expired, emit, slots)


class BatchStream(Generic[T]):
    """The results of :meth:`Pynector.batch`, as they finish.

    ``async with client.batch(requests) as results: async for result in results``.
    Entering starts the workers; leaving the block (at the end, on ``break``, an
    error or a cancellation) cancels the requests still in flight and waits for
    them to stop. Results wait in a buffer of ``max_concurrency`` entries: when
    the loop body is slower than the requests, the workers wait for it.
    """

    __slots__ = ("_buffer", "_failure", "_group", "_receive", "_run", "_send", "_state")

    def __init__(self, run: Callable[[Emit], Awaitable[None]], buffer: int) -> None:
        self._run = run
        self._buffer = buffer
        self._state = "new"
        self._failure: Exception | None = None
        self._group: Any = None
        self._send: Any = None
        self._receive: Any = None

    def __repr__(self) -> str:
        return f"<BatchStream state={self._state}>"

    async def __aenter__(self) -> BatchStream[T]:
        """Start the workers."""
        if self._state != "new":
            raise ConfigurationError(
                "this batch was already entered; call client.batch(...) again for a new run"
            )
        self._state = "open"
        self._send, self._receive = anyio.create_memory_object_stream[BatchResult[T]](self._buffer)
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        group.start_soon(self._produce)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancel what is still in flight and wait for it; the block's own error propagates."""
        group, self._group = self._group, None
        self._state = "closed"
        if group is None:
            return
        group.cancel_scope.cancel()
        # The producer keeps its errors to itself (they reach the loop), so the group
        # raises nothing of its own; the block's exception, if any, goes on as it is,
        # never wrapped in an exception group.
        try:
            await group.__aexit__(None, None, None)
        finally:
            self._receive.close()

    async def _produce(self) -> None:
        send = self._send
        try:
            await self._run(self._emit)
        except Exception as exc:  # raise_on_error's first error, a bad item, on_result's error
            self._failure = exc
        finally:
            send.close()

    def _emit(
        self,
        index: int,
        data: Any,
        options: Mapping[str, Any],
        value: Any,
        error: Exception | None,
        attempts: int,
        elapsed: float,
    ) -> Awaitable[None] | None:
        result: BatchResult[T] = BatchResult(index, data, options, value, error, attempts, elapsed)
        try:
            self._send.send_nowait(result)
        except anyio.WouldBlock:
            return self._send.send(result)  # type: ignore[no-any-return]
        return None

    def __aiter__(self) -> BatchStream[T]:
        if self._state == "new":
            raise ConfigurationError(
                "a batch is iterated inside its block: "
                "`async with client.batch(requests) as results:` then "
                "`async for result in results:`"
            )
        return self

    async def __anext__(self) -> BatchResult[T]:
        """The next finished request.

        Raises:
            PynectorError: With ``raise_on_error=True``, the first error (after
                the results that finished before it), or ``TimeoutError`` for
                the batch; a malformed request when it is reached.
        """
        if self._state != "open":
            raise StopAsyncIteration
        receive = self._receive
        try:
            # A buffered result is taken without a checkpoint (the buffer bounds how many
            # in a row); only an empty buffer waits.
            return receive.receive_nowait()  # type: ignore[no-any-return]
        except anyio.WouldBlock:
            try:
                return await receive.receive()  # type: ignore[no-any-return]
            except anyio.EndOfStream:
                pass
        except anyio.EndOfStream:
            pass
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure  # raised here, outside the handler: no EndOfStream in its context
        raise StopAsyncIteration
