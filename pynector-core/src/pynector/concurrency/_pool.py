"""The worker pool: a fixed number of workers pulling from one iterator.

Memory and task count grow with the number of workers, never with the number
of items, so a pool can consume a generator of millions of requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
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

    async def run(self, items: Iterable[T], handler: Callable[[int, T], Awaitable[None]]) -> None:
        """Call ``handler(index, item)`` for every item, ``size`` at a time.

        Items are pulled lazily, in order, as workers become free. The handler
        is started for an item immediately after that item is pulled, so a
        handler can rely on being called in index order up to its first await.

        If the handler or the iterable raises, the remaining work is cancelled
        and that first exception is raised as is (never an exception group).
        """
        numbered = enumerate(items)
        failure: list[BaseException] = []

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
