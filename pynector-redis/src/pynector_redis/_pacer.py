"""The shared pacer: the GCRA of :class:`pynector.concurrency.RateLimiter`, booked in Redis."""

from __future__ import annotations

import math
from collections import deque

import anyio

from pynector.concurrency import DEFAULT_MARGIN, RateLimiter

from ._connection import Connection
from ._scripts import PACE

__all__ = ["BLOCK_SPAN", "RedisPacer"]

_PAUSES_BLOCK = 256  # the most callers one round trip lets start when there is no rate

BLOCK_SPAN = 0.05
"""Seconds of the rate one round trip may book for the callers waiting in this process."""


class RedisPacer:
    """Starts paced at ``count`` per ``period`` across every process sharing ``key``.

    The same limiter as :class:`~pynector.concurrency.RateLimiter` (the same
    spacing, burst, pause and hint rules), with its state in Redis and its
    clock Redis's. Each round trip books the next start slot atomically and
    says how long to wait for it; the caller then sleeps that long. A slot is
    booked only if the caller can wait for it: past the caller's deadline
    nothing is booked and the caller waits for its deadline. When several
    callers of this process wait, one round trip books a block of consecutive
    slots (at most :data:`BLOCK_SPAN` seconds of the rate) and hands them out
    here, first come, first served. With no rate (pauses only), a round trip
    that found no pause lets this process start freely for the next
    :data:`BLOCK_SPAN` seconds: a pause set by another process is seen within
    that time.

    :meth:`pause` and :meth:`hint` apply here at once (slots booked before them
    are dropped) and reach Redis with this pacer's next round trip, or when the
    store is closed.
    """

    __slots__ = (
        "_asking",
        "_booked_pause",
        "_connection",
        "_epoch",
        "_fresh_until",
        "_hint",
        "_key",
        "_lock",
        "_pause_until",
        "_slots",
        "_stale",
        "_waiting",
        "block",
        "burst",
        "count",
        "interval",
        "margin",
        "period",
    )

    def __init__(
        self,
        connection: Connection,
        key: str,
        count: int | None,
        period: float = 1.0,
        *,
        burst: int = 1,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        rule = RateLimiter(count, period, burst=burst, margin=margin)  # the same checks
        self.count = count
        self.period = period
        self.burst = burst
        self.margin = margin
        self.interval = rule.interval
        """Seconds between two paced starts (the spacing plus the margin)."""
        # Pauses only: a slot costs no rate, so one round trip books one for every
        # caller waiting here.
        self.block = max(1, int(BLOCK_SPAN / self.interval)) if self.interval else _PAUSES_BLOCK
        """The most slots one round trip books."""
        self._connection = connection
        self._key = key
        # A slot found this late is dropped (using it would bunch starts up);
        # a waiter woken late by the event loop still keeps its own slot.
        self._stale = max(min(margin / 2, self.interval), 0.001)
        self._slots: deque[float] = deque()
        self._epoch = 0
        self._waiting = 0
        self._lock: anyio.Lock | None = None
        self._asking: anyio.Event | None = None  # no rate: set when a round trip under way ends
        self._pause_until = -math.inf
        self._booked_pause = -math.inf  # the latest pause Redis has been told of
        self._hint: tuple[float, float] | None = None  # (interval, until); until < 0: clear
        self._fresh_until = -math.inf  # pauses only: no round trip needed before this

    def __repr__(self) -> str:
        rate = "pauses only" if self.count is None else f"{self.count}/{self.period:g}s"
        return f"RedisPacer({self._key!r}, {rate}, burst={self.burst})"

    @property
    def idle(self) -> bool:
        """True while :meth:`acquire` would return at once, recording nothing.

        Only with no rate and no hint, and for a moment (``BLOCK_SPAN``) after
        Redis answered that it held no pause: a pause another process set is
        seen within that moment.
        """
        return self._free() and self._free_now()

    @property
    def pending(self) -> bool:
        """True when a pause or hint has not reached Redis yet."""
        return self._hint is not None or self._pause_until > self._booked_pause

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (extends, never shortens)."""
        until = anyio.current_time() + max(seconds, 0.0)
        if until > self._pause_until:
            self._pause_until = until
            self._drop_slots()

    def hint(self, remaining: int, reset: float) -> None:
        """Spread ``remaining`` starts over the ``reset`` seconds a server announced.

        The rule of :meth:`pynector.concurrency.RateLimiter.hint`: a hint only
        ever slows the starts down, and with none remaining every caller waits
        for the reset.
        """
        if remaining < 0 or not math.isfinite(reset) or reset <= 0:
            return
        spacing = reset / max(remaining, 1) * (1 + self.margin)
        if spacing <= self.interval:
            return
        if remaining == 0:
            self._hint = (0.0, -1.0)  # after the reset: the configured pace again
            self.pause(spacing)
            return
        self._hint = (spacing, anyio.current_time() + reset)
        self._drop_slots()

    def _drop_slots(self) -> None:
        self._slots.clear()
        self._epoch += 1
        self._fresh_until = -math.inf

    async def acquire(self) -> None:
        """Wait until one more start is allowed, and record it.

        Raises:
            StoreUnavailableError: If Redis cannot be reached.
        """
        while self._free():
            if self._free_now():
                return  # no rate, and Redis held no pause a moment ago
            asking = self._asking
            if asking is None:
                break
            # Another caller is asking Redis: its answer frees every caller at once
            # (waiting for the lock instead, they would pass one per turn of the loop).
            await asking.wait()
        if self._lock is None:
            self._lock = anyio.Lock()
        self._waiting += 1
        try:
            async with self._lock:
                while True:
                    if self._free() and self._free_now():
                        return  # asked while this caller waited for the lock
                    now = anyio.current_time()
                    while self._slots and self._slots[0] < now - self._stale:
                        self._slots.popleft()
                    if not self._slots:
                        await self._ask(min(self._waiting, self.block))
                        continue
                    at, epoch = self._slots.popleft(), self._epoch
                    if at > now:
                        await anyio.sleep(at - now)
                    if epoch == self._epoch:
                        return
                    # A pause or hint came while waiting: this slot was booked before it.
        finally:
            self._waiting -= 1

    def _free(self) -> bool:
        """No rate and no hint: only a pause can hold a caller back."""
        return not self.interval and self._hint is None

    def _free_now(self) -> bool:
        """(With :meth:`_free`) Redis held no pause a moment ago and none waits to reach it."""
        now = anyio.current_time()
        return self._pause_until <= now < self._fresh_until and not self.pending

    async def _ask(self, wanted: int) -> None:
        """:meth:`_book`; with no rate, the callers arriving meanwhile wait for its answer."""
        if not self._free():
            await self._book(wanted)
            return
        asking = self._asking = anyio.Event()
        try:
            await self._book(wanted)
        finally:
            self._asking = None
            asking.set()

    async def flush(self) -> None:
        """Send a pending pause or hint now (book nothing)."""
        if self.pending:
            await self._round_trip(0, -1.0)

    async def _book(self, wanted: int) -> None:
        deadline = anyio.current_effective_deadline()
        # Negative: no deadline, any wait will do.
        max_wait = max(deadline - anyio.current_time(), 0.0) if math.isfinite(deadline) else -1.0
        epoch = self._epoch
        reply = await self._round_trip(wanted, max_wait)
        received = anyio.current_time()
        booked = int(reply[0])
        if not booked:
            # The next slot is past the deadline: wait for the deadline to cancel us.
            await anyio.sleep_until(max(deadline, received + 0.001))
            return
        if epoch == self._epoch:
            # Counted from the reply's arrival: a little later than Redis's clock, never earlier.
            waits = [float(wait) for wait in reply[1 : booked + 1]]
            self._slots.extend(received + wait for wait in waits)
            if not self.interval and self._hint is None and not any(waits):
                self._fresh_until = received + BLOCK_SPAN

    async def _round_trip(self, wanted: int, max_wait: float) -> list[bytes | int]:
        now = anyio.current_time()
        pause_until = self._pause_until
        pause = max(pause_until - now, 0.0)
        hint = self._hint
        hint_interval, hint_for = 0.0, 0.0
        if hint is not None:
            hint_interval = hint[0]
            hint_for = -1.0 if hint[1] < 0 else max(hint[1] - now, 0.0)
            if hint_for == 0.0:
                hint_for = -1.0  # the hint is over already
        reply: list[bytes | int] = await self._connection.run(
            PACE,
            [self._key],
            [
                repr(self.interval),
                self.burst,
                wanted,
                repr(max_wait),
                repr(pause),
                repr(hint_interval),
                repr(hint_for),
            ],
        )
        self._booked_pause = max(self._booked_pause, pause_until)
        if self._hint is hint:
            self._hint = None
        return reply
