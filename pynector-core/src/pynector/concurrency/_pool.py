"""The worker pool: a fixed number of workers pulling from one iterator.

Memory and task count grow with the number of workers, never with the number
of items, so a pool can consume a generator of millions of requests. The
iterator may be asynchronous (items that arrive over the network, such as the
claims of a distributed batch job): a free worker then awaits the next item.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TypeVar

import anyio

from pynector.errors import ConfigurationError

__all__ = ["WorkerPool"]

T = TypeVar("T")


class WorkerPool:
    """Run an async handler over an iterable with at most ``size`` calls in flight.

    Args:
        size: The number of workers (and so the most calls in flight).

    Raises:
        ConfigurationError: If ``size`` is not a whole number of at least 1.
    """

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(
                f"max_concurrency={size!r} is invalid: it must be a whole number of at "
                "least 1, e.g. max_concurrency=10"
            )
        self.size = size

    async def run(
        self,
        items: Iterable[T] | AsyncIterable[T],
        handler: Callable[[int, T], Awaitable[None]],
    ) -> None:
        """Call ``handler(index, item)`` for every item, ``size`` at a time.

        Items are pulled lazily, in order, as workers become free. The handler
        is started for an item immediately after that item is pulled, so a
        handler can rely on being called in index order up to its first await.
        From an async iterable, one free worker at a time awaits the next item.

        If the handler or the iterable raises, the remaining work is cancelled
        and that first exception is raised as is (never an exception group).
        """
        failure: list[BaseException] = []
        if isinstance(items, AsyncIterable):
            pull = _puller(items)

            async def worker(scope: anyio.CancelScope) -> None:
                try:
                    while (pulled := await pull()) is not None:
                        await handler(*pulled)
                except Exception as exc:
                    if not failure:
                        failure.append(exc)
                    scope.cancel()

        else:
            numbered = enumerate(items)

            async def worker(scope: anyio.CancelScope) -> None:
                try:
                    for index, item in numbered:
                        await handler(index, item)
                except Exception as exc:
                    if not failure:
                        failure.append(exc)
                    scope.cancel()

        async with anyio.create_task_group() as group:
            for _ in range(self.size):
                group.start_soon(worker, group.cancel_scope)
        if failure:
            raise failure[0]


def _puller(items: AsyncIterable[T]) -> Callable[[], Awaitable[tuple[int, T] | None]]:
    """``pull()``: the next ``(index, item)``, one caller at a time; ``None`` at the end.

    Not a lock that hands itself over: a handed-over lock waits for its next
    owner to be scheduled, so once two workers met at it every later pull
    would wait one turn of the event loop for the one before, even when the
    iterator has items ready. Here a free worker pulls at once whenever no
    pull is under way; those that found one under way wait for it to end and
    try again.
    """
    iterator = aiter(items)
    count = 0
    ended = False
    busy = False
    done: anyio.Event | None = None  # set when the pull under way ends

    async def pull() -> tuple[int, T] | None:
        nonlocal count, ended, busy, done
        while busy:
            if done is None:
                done = anyio.Event()
            await done.wait()
        if ended:
            return None
        busy = True
        try:
            item = await anext(iterator)
        except StopAsyncIteration:
            ended = True
            return None
        finally:
            busy = False
            if done is not None:
                done.set()
                done = None
        index, count = count, count + 1
        return index, item

    return pull
