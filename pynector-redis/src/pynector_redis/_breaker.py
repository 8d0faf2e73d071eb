"""The shared circuit breaker: one breaker per key for every process, kept in Redis."""

from __future__ import annotations

import itertools
import uuid

import anyio

from pynector.concurrency import PROBE_WAIT, BreakerSettings
from pynector.errors import CircuitOpenError

from ._connection import Connection
from ._scripts import BREAKER

__all__ = ["PROBE_TTL", "SYNC_EVERY", "RedisBreaker", "RedisBreakerPermit"]

SYNC_EVERY = 0.1
"""Seconds a process trusts the breaker state Redis last sent it while nothing failed."""

PROBE_TTL = 30.0
"""Seconds a half-open breaker's probe is held for a process that never reports it."""

_CLOSED, _OPEN, _HALF_OPEN = 0, 1, 2


class RedisBreakerPermit:
    """One call let through a :class:`RedisBreaker`; its outcome goes with the next round trip."""

    __slots__ = ("_breaker", "_generation", "probe")

    def __init__(self, breaker: RedisBreaker, generation: int, probe: str | None) -> None:
        self._breaker: RedisBreaker | None = breaker
        self._generation = generation
        self.probe = probe
        """The probe's id when the call is a half-open breaker's probe, else ``None``."""

    def __repr__(self) -> str:
        return f"RedisBreakerPermit(probe={self.probe!r})"

    def record(self, failed: bool | None) -> None:
        """The call ended: ``True`` failed (unhealthy), ``False`` succeeded, ``None`` neither."""
        breaker, self._breaker = self._breaker, None
        if breaker is not None:
            breaker._record(self._generation, self.probe, failed)


class RedisBreaker:
    """The circuit breaker of :class:`~pynector.concurrency.CircuitBreaker`, shared in Redis.

    The counts of the window, the open-until time (Redis's clock) and the
    probes out live in Redis, changed by one script per round trip. A process
    keeps the last state Redis sent it: a closed breaker lets calls through
    with no round trip for :data:`SYNC_EVERY` seconds (and its outcomes go with
    the next round trip), an open one refuses them until its cooldown ends.
    A failure, or a probe's outcome, makes the next call look again at once.
    In half-open state a call asks Redis for one of the ``probes`` probes of
    the whole fleet; a probe held by a process that dies is free again after
    :data:`PROBE_TTL` seconds.

    Args:
        connection: The store's connection.
        keys: The breaker's hash and its probes' sorted set.
        key: The key the breaker guards, as errors name it.
        settings: When it opens and for how long.
    """

    __slots__ = (
        "_calls",
        "_connection",
        "_dirty",
        "_failures",
        "_generation",
        "_ids",
        "_keys",
        "_lock",
        "_outcomes",
        "_prefix",
        "_run",
        "_state",
        "_succeeded",
        "_synced",
        "_until",
        "key",
        "settings",
    )

    def __init__(
        self, connection: Connection, keys: tuple[str, str], key: str, settings: BreakerSettings
    ) -> None:
        self.key = key
        self.settings = settings
        self._connection = connection
        self._keys = keys
        self._prefix = uuid.uuid4().hex
        self._ids = itertools.count()
        self._lock: anyio.Lock | None = None
        self._state = _CLOSED
        self._until = 0.0  # open: until then (this process's clock)
        self._generation = 0
        self._synced = -SYNC_EVERY * 2  # never: the first call asks Redis
        self._dirty = True
        self._calls = 0
        self._failures = 0
        self._run = 0  # the failures in a row that end the pending counts
        self._succeeded = False  # the pending counts hold a success
        self._outcomes: list[tuple[str, int, int]] = []  # (probe id, outcome, generation)

    def __repr__(self) -> str:
        return f"RedisBreaker({self._keys[0]!r})"

    @property
    def pending(self) -> bool:
        """True when outcomes have not reached Redis yet."""
        return bool(self._calls or self._outcomes)

    def _record(self, generation: int, probe: str | None, failed: bool | None) -> None:
        if probe is not None:
            self._outcomes.append((probe, 0 if failed is None else 2 if failed else 1, generation))
            self._dirty = True
            return
        if failed is None or generation != self._generation:
            return
        self._calls += 1
        if failed:
            self._failures += 1
            self._run += 1
            self._dirty = True
        else:
            self._run = 0
            self._succeeded = True

    def _cached(self) -> RedisBreakerPermit | None:
        """The decision from the state Redis last sent, or ``None`` to ask Redis."""
        if self._outcomes:
            return None
        now = anyio.current_time()
        state = self._state
        if state == _OPEN:
            if now < self._until:
                raise CircuitOpenError.refusing(self.key, self._until - now)
            return None
        if now - self._synced >= SYNC_EVERY:
            return None
        if state == _CLOSED:
            return None if self._dirty else RedisBreakerPermit(self, self._generation, None)
        raise CircuitOpenError.refusing(self.key, PROBE_WAIT, probing=True)

    async def acquire(self) -> RedisBreakerPermit:
        """Let one call through, or refuse it.

        Raises:
            CircuitOpenError: The breaker is open, or half-open with its probes out.
            StoreUnavailableError: If Redis cannot be reached.
        """
        permit = self._cached()
        if permit is not None:
            return permit
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            permit = self._cached()  # another call of this process may just have asked
            if permit is not None:
                return permit
            permit = await self._round_trip(True)
            assert permit is not None  # a round trip that admits lets through or raises
            return permit

    async def flush(self) -> None:
        """Send pending outcomes now (take no probe)."""
        if self.pending:
            await self._round_trip(False)

    async def _round_trip(self, admit: bool) -> RedisBreakerPermit | None:
        calls, failures, outcomes = self._calls, self._failures, self._outcomes
        run, succeeded = self._run, self._succeeded
        self._calls = self._failures = self._run = 0
        self._succeeded = False
        self._outcomes = []
        self._dirty = False
        probe = f"{self._prefix}:{next(self._ids)}"
        settings = self.settings
        args: list[str | int | float] = [
            repr(settings.failure_ratio),
            settings.minimum_calls,
            repr(settings.window / 10),
            repr(settings.cooldown),
            settings.probes,
            repr(PROBE_TTL),
            self._generation,
            calls,
            failures,
            1 if admit else 0,
            probe,
            run,
            1 if succeeded else 0,
            len(outcomes),
        ]
        for outcome in outcomes:
            args += outcome
        try:
            reply = await self._connection.run(BREAKER, self._keys, args)
        except BaseException:
            # Not sent: kept for the next round trip.
            self._calls += calls
            self._failures += failures
            self._run = self._run if self._succeeded else run + self._run
            self._succeeded = self._succeeded or succeeded
            self._outcomes = outcomes + self._outcomes
            self._dirty = True
            raise
        now = anyio.current_time()
        state, seconds, generation, granted = (
            int(reply[0]),
            float(reply[1]),
            int(reply[2]),
            int(reply[3]),
        )
        if generation != self._generation:
            self._calls = self._failures = self._run = 0  # counted in an earlier closed period
        self._generation = generation
        self._state = state
        self._synced = now
        self._until = now + seconds if state == _OPEN else 0.0
        if not admit:
            return None
        if state == _CLOSED:
            return RedisBreakerPermit(self, generation, None)
        if granted:
            return RedisBreakerPermit(self, generation, probe)
        if state == _OPEN:
            raise CircuitOpenError.refusing(self.key, seconds)
        raise CircuitOpenError.refusing(self.key, PROBE_WAIT, probing=True)
