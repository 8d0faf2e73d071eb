"""The shared token budget: the sliding log of :class:`~pynector.concurrency.TokenBudget`."""

from __future__ import annotations

import itertools
import uuid

import anyio

from pynector.concurrency import DEFAULT_MARGIN, TokenBudget, TokenReservation

from ._connection import Connection
from ._polling import Poller
from ._scripts import TOKENS

__all__ = ["RedisReservation", "RedisTokenBudget"]


class RedisReservation:
    """The tokens one call holds in a :class:`RedisTokenBudget` until it is settled."""

    __slots__ = ("_budget", "id", "tokens")

    def __init__(self, budget: RedisTokenBudget, id: str, tokens: int) -> None:
        self._budget = budget
        self.id = id
        self.tokens = tokens

    def __repr__(self) -> str:
        return f"RedisReservation({self.id!r}, tokens={self.tokens})"

    def settle(self, tokens: int) -> None:
        """Replace the reservation with ``tokens`` (sent with the budget's next round trip)."""
        tokens = max(int(tokens), 0)
        self._budget._settle(self, tokens)
        self.tokens = tokens


class RedisTokenBudget:
    """At most ``limit`` tokens in any window of ``period`` seconds, across every process.

    The semantics of :class:`~pynector.concurrency.TokenBudget` (an entry counts
    until its ``at`` plus the window; ``at`` is the start plus ``hold`` while the
    call is in flight, the moment it was settled once settled, if sooner), kept
    in Redis and changed by one script per round trip. A full budget is looked
    at again when Redis says room comes, and sooner (capped backoff), since
    another process's settle can give room back; one waiter per process looks,
    the others queue behind it, first come, first served.

    Settles apply here at once and reach Redis with the budget's next round
    trip, or when the store is closed.
    """

    __slots__ = (
        "_connection",
        "_ids",
        "_keys",
        "_lock",
        "_poller",
        "_prefix",
        "_settles",
        "hold",
        "limit",
        "period",
        "window",
    )

    def __init__(
        self,
        connection: Connection,
        keys: tuple[str, str],
        limit: int,
        period: float = 60.0,
        *,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        rule = TokenBudget(limit, period, margin=margin)  # the same checks and windows
        self.limit = limit
        self.period = period
        self.window = rule.window
        """Seconds a reservation stays in the window (the period plus the margin)."""
        self.hold = rule.hold
        """Seconds after its start a request in flight is assumed to have been sent by."""
        self._connection = connection
        self._keys = keys
        self._prefix = uuid.uuid4().hex
        self._ids = itertools.count()
        self._settles: dict[str, tuple[int, float]] = {}  # id -> (tokens, when settled)
        self._lock: anyio.Lock | None = None
        self._poller = Poller()

    def __repr__(self) -> str:
        return f"RedisTokenBudget({self._keys[0]!r}, limit={self.limit}, period={self.period:g})"

    @property
    def pending(self) -> bool:
        """True when settles have not reached Redis yet."""
        return bool(self._settles)

    def check(self, tokens: int) -> None:
        """Raise :class:`~pynector.concurrency.TokenBudgetError` if ``tokens`` can never fit."""
        TokenBudget(self.limit, self.period).check(tokens)

    def _settle(self, reservation: RedisReservation, tokens: int) -> None:
        earlier = self._settles.get(reservation.id)
        settled_at = earlier[1] if earlier else anyio.current_time()
        self._settles[reservation.id] = (tokens, settled_at)
        if tokens < reservation.tokens:
            self._poller.wake()  # room was given back: the waiter looks again

    async def reserve(self, tokens: int) -> TokenReservation:
        """Wait until ``tokens`` fit in the window, and hold them.

        Raises:
            TokenBudgetError: If ``tokens`` exceeds the whole budget: it could never fit.
            StoreUnavailableError: If Redis cannot be reached.
        """
        self.check(tokens)
        tokens = max(int(tokens), 0)
        if self._lock is None:
            self._lock = anyio.Lock()
        id = f"{self._prefix}:{next(self._ids)}"
        async with self._lock:
            while True:
                held, wait = await self._round_trip(tokens, id)
                if held:
                    self._poller.reset()
                    return RedisReservation(self, id, tokens)
                await self._poller.wait(wait)

    async def flush(self) -> None:
        """Send pending settles now (reserve nothing)."""
        if self._settles:
            await self._round_trip(-1, "")

    async def _round_trip(self, tokens: int, id: str) -> tuple[bool, float]:
        settles = self._settles
        self._settles = {}
        now = anyio.current_time()
        args: list[str | int | float] = [
            repr(self.window),
            repr(self.hold),
            self.limit,
            tokens,
            id,
            len(settles),
        ]
        for settled, (used, at) in settles.items():
            args += [settled, used, repr(max(now - at, 0.0))]
        try:
            reply = await self._connection.run(TOKENS, self._keys, args)
        except BaseException:
            # Not sent: kept for the next round trip (a newer settle of the same call wins).
            self._settles = settles | self._settles
            raise
        return bool(int(reply[0])), float(reply[1])
