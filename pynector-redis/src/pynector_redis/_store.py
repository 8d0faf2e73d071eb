"""``redis://``, ``rediss://`` and ``unix://``: the limits kept in Redis (or Valkey)."""

from __future__ import annotations

import contextlib

from pynector.concurrency import (
    DEFAULT_JOB_TTL,
    DEFAULT_MARGIN,
    Breaker,
    BreakerSettings,
    Leases,
    Pacer,
    TokenLimiter,
)
from pynector.errors import StoreUnavailableError

from ._breaker import RedisBreaker
from ._connection import Connection
from ._jobs import RedisJob
from ._leases import RedisLeases
from ._pacer import RedisPacer
from ._tokens import RedisTokenBudget

__all__ = ["KEY_PREFIX", "RedisStore"]

KEY_PREFIX = "pynector:limit:"
"""Every key the store writes starts with this, then ``{limit_key}:``."""


class RedisStore:
    """The shared store on Redis or Valkey, through coredis (asyncio and trio).

    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS; the
    ``ssl_*`` query options of coredis apply) or
    ``unix://[[user]:password@]/path/redis.sock[?db=N]``. A ``timeout=`` query
    option (seconds) overrides the keyword. Nothing connects until the first
    operation; every round trip (connecting included) is bounded by
    ``timeout`` and fails as :class:`~pynector.errors.StoreUnavailableError`,
    and the next one after Redis is back works again. All times are Redis's
    (``TIME``), one clock for the whole fleet.

    The keys of a limit are ``pynector:limit:{key}:pace``, ``...:tokens:log``
    and ``...:tokens:held``, ``...:leases``, and ``...:breaker`` and
    ``...:breaker:probes`` (the braces make one Redis
    Cluster hash slot per limit); each carries a TTL, so the state of an
    abandoned limit vanishes.

    Args:
        url: The Redis URL; its password never appears in :attr:`url`, reprs or errors.
        timeout: Seconds one round trip may take (2 by default).

    Raises:
        ConfigurationError: If the URL is not a Redis URL or the timeout is invalid.
    """

    shared = True

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self._connection = Connection(url, timeout)
        self._limits: dict[
            tuple[object, ...], RedisPacer | RedisTokenBudget | RedisLeases | RedisBreaker
        ] = {}
        self._closed = False

    @property
    def url(self) -> str:
        """The store's URL with any password masked."""
        return self._connection.redacted

    @property
    def timeout(self) -> float:
        """Seconds one round trip may take."""
        return self._connection.timeout

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    def pacer(
        self,
        key: str,
        count: int | None,
        period: float = 1.0,
        *,
        burst: int = 1,
        margin: float = DEFAULT_MARGIN,
    ) -> Pacer:
        """The paced request rate under ``key`` (one per key and rate in this process)."""
        found = self._limits.get(("pace", key, count, period, burst, margin))
        if isinstance(found, RedisPacer):
            return found
        pacer = RedisPacer(
            self._connection, _key(key, "pace"), count, period, burst=burst, margin=margin
        )
        self._limits["pace", key, count, period, burst, margin] = pacer
        return pacer

    def token_budget(
        self, key: str, limit: int, period: float = 60.0, *, margin: float = DEFAULT_MARGIN
    ) -> TokenLimiter:
        """The token budget under ``key`` (one per key and budget in this process)."""
        found = self._limits.get(("tokens", key, limit, period, margin))
        if isinstance(found, RedisTokenBudget):
            return found
        budget = RedisTokenBudget(
            self._connection,
            (_key(key, "tokens:log"), _key(key, "tokens:held")),
            limit,
            period,
            margin=margin,
        )
        self._limits["tokens", key, limit, period, margin] = budget
        return budget

    def leases(self, key: str, limit: int) -> Leases:
        """The in-flight slots under ``key`` (one per key and limit in this process)."""
        found = self._limits.get(("leases", key, limit))
        if isinstance(found, RedisLeases):
            return found
        leases = RedisLeases(self._connection, _key(key, "leases"), limit)
        self._limits["leases", key, limit] = leases
        return leases

    def breaker(self, key: str, settings: BreakerSettings) -> Breaker:
        """The circuit breaker under ``key``, shared by every process (one per key here)."""
        found = self._limits.get(("breaker", key, settings))
        if isinstance(found, RedisBreaker):
            return found
        breaker = RedisBreaker(
            self._connection, (_key(key, "breaker"), _key(key, "breaker:probes")), key, settings
        )
        self._limits["breaker", key, settings] = breaker
        return breaker

    def job(self, name: str, *, ttl: float | None = DEFAULT_JOB_TTL) -> RedisJob:
        """The batch job ``name`` (``pynector batch --job NAME``); see ``docs/distributed.md``.

        Args:
            name: The job's name: letters, digits and ``._:@-``.
            ttl: Seconds the job stays after its last activity; ``None`` keeps it.

        Raises:
            ConfigurationError: If the name or the ttl is invalid.
        """
        return RedisJob(self._connection, name, ttl)

    async def flush(self) -> None:
        """Send every pending settle, pause, hint and breaker outcome now.

        Raises:
            StoreUnavailableError: If Redis cannot be reached.
        """
        for limit in list(self._limits.values()):
            if isinstance(limit, RedisPacer | RedisTokenBudget | RedisBreaker) and limit.pending:
                await limit.flush()

    async def aclose(self) -> None:
        """Send pending settles, pauses and hints, then close the connections (idempotent).

        What cannot be sent because Redis is unreachable is dropped: the
        entries it would have changed expire by themselves.
        """
        if self._closed:
            return
        with contextlib.suppress(StoreUnavailableError):
            await self.flush()  # Redis is down: what was pending expires by itself
        self._closed = True
        await self._connection.aclose()


def _key(key: str, part: str) -> str:
    return f"{KEY_PREFIX}{{{key}}}:{part}"
