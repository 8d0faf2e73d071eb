"""Waiting for room that another process may give back: capped backoff, woken early by this one."""

from __future__ import annotations

import anyio

__all__ = ["FIRST_POLL", "LAST_POLL", "Poller"]

FIRST_POLL = 0.05
"""Seconds before the first look again at a full limit."""

LAST_POLL = 0.25
"""The longest wait between two looks (other processes' releases and settles are not announced)."""


class Poller:
    """The waits of one process's poller on one full limit.

    Each wait lasts the backoff (doubling from :data:`FIRST_POLL` to
    :data:`LAST_POLL`), or less when Redis said when room comes, and ends at
    once when this process gives room back (:meth:`wake`).
    """

    __slots__ = ("_changed", "_delay")

    def __init__(self) -> None:
        self._delay = FIRST_POLL
        self._changed: anyio.Event | None = None

    def reset(self) -> None:
        """Start the backoff again (the limit had room)."""
        self._delay = FIRST_POLL

    def wake(self) -> None:
        """Room was given back here: the waiter looks again now."""
        if self._changed is not None:
            self._changed.set()

    async def wait(self, at_most: float) -> None:
        """Wait the backoff, at most ``at_most`` seconds, or until :meth:`wake`."""
        changed = self._changed = anyio.Event()
        try:
            with anyio.move_on_after(max(min(self._delay, at_most), 0.0)):
                await changed.wait()
        finally:
            self._changed = None
        self._delay = min(self._delay * 2, LAST_POLL)
