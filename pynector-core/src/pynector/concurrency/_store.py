"""Where limits keep their state: in the process (``memory://``) or in a shared store.

A store hands out the shared limits by key: a paced request rate
(:class:`~pynector.concurrency.Pacer`), a token budget
(:class:`~pynector.concurrency.TokenLimiter`), in-flight leases
(:class:`Leases`) and circuit breakers (:class:`~pynector.concurrency.Breaker`).
Every process whose clients use the same store and the same
``config["limit_key"]`` shares the first three; a breaker is shared under the
key the transport names for a call (HTTP: the origin). ``memory://`` keeps them in the process;
``pynector-redis`` provides ``redis://``, ``rediss://`` and ``unix://``
through the ``pynector.stores`` entry-point group, keyed by URL scheme.

A shared store's operations raise :class:`~pynector.errors.StoreUnavailableError`
when the store cannot be reached (each round trip bounded by a short timeout,
so nothing hangs); the client decides, by ``config["store_failure"]``, whether
to wait for it (``"closed"``) or fall back to per-process limits (``"open"``).

The synchronous members (:meth:`Pacer.pause`, :meth:`Pacer.hint`,
:meth:`TokenReservation.settle`) of a shared store's limits apply at once in
the process and reach the store with that limit's next round trip (the next
start or reservation), so they cost no round trip of their own; a 429's pause
is sent at once (:meth:`Store.flush`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._breaker import Breaker, BreakerSettings, CircuitBreaker
from ._ratelimit import DEFAULT_MARGIN, Pacer, RateLimiter
from ._tokens import TokenBudget, TokenLimiter

__all__ = ["MEMORY_URL", "Lease", "Leases", "LocalLeases", "MemoryStore", "Store"]

MEMORY_URL = "memory://"


class Lease(Protocol):
    """One in-flight slot of a :class:`Leases`, held until released or expired."""

    async def release(self) -> None:
        """Give the slot back (at most once; a second call does nothing)."""
        ...


class Leases(Protocol):
    """At most ``limit`` slots held at once across everyone sharing the key.

    A slot is a lease: it expires ``ttl`` seconds after it was taken unless
    released, so a process killed while holding slots gives them back within
    the lease time.
    """

    limit: int

    async def acquire(self, ttl: float) -> Lease:
        """Wait for a free slot and hold it for at most ``ttl`` seconds."""
        ...


@runtime_checkable
class Store(Protocol):
    """A place where limits keep their state, shared by everyone who uses the same key.

    A store is made from its URL by the factory registered under the URL's
    scheme in the ``pynector.stores`` entry-point group:
    ``factory(url: str) -> Store``. It connects on first use and is closed by
    :meth:`aclose`. Keys are never secrets (see ``config["limit_key"]``); a
    store may prefix them.
    """

    @property
    def url(self) -> str:
        """The store's URL with any password masked: fit for reprs, logs and errors."""
        ...

    @property
    def shared(self) -> bool:
        """True when the state is shared beyond this process (False for ``memory://``)."""
        ...

    def pacer(
        self,
        key: str,
        count: int | None,
        period: float = 1.0,
        *,
        burst: int = 1,
        margin: float = DEFAULT_MARGIN,
    ) -> Pacer:
        """The paced request rate under ``key``: ``count`` starts per ``period`` seconds.

        ``count=None``: no rate, only the pauses a 429's Retry-After asks for
        (and server hints), shared like the rate.
        """
        ...

    def token_budget(
        self, key: str, limit: int, period: float = 60.0, *, margin: float = DEFAULT_MARGIN
    ) -> TokenLimiter:
        """The token budget under ``key``: at most ``limit`` tokens in any ``period`` seconds."""
        ...

    def leases(self, key: str, limit: int) -> Leases:
        """The in-flight slots under ``key``: at most ``limit`` held at once."""
        ...

    def breaker(self, key: str, settings: BreakerSettings) -> Breaker:
        """The circuit breaker under ``key``: its counts, its state and its probes.

        A shared store's breaker is shared by every process using ``key``: one
        opens it for all, and a half-open breaker lets ``settings.probes``
        probes through across all of them.
        """
        ...

    async def flush(self) -> None:
        """Send every pending pause, hint and settlement to the store now.

        The client calls it after a 429's Retry-After has paused the limiter,
        so that every process sharing the key holds back at once, not only
        from this process's next start. Raises
        :class:`~pynector.errors.StoreUnavailableError` when the store cannot
        be reached.
        """
        ...

    async def aclose(self) -> None:
        """Flush what is pending and close the store's connections (idempotent)."""
        ...


class _LocalLease:
    __slots__ = ("_limiter", "_token")

    def __init__(self, limiter: object, token: object) -> None:
        self._limiter: object | None = limiter
        self._token = token

    async def release(self) -> None:
        import anyio

        limiter = self._limiter
        if isinstance(limiter, anyio.CapacityLimiter):
            self._limiter = None
            limiter.release_on_behalf_of(self._token)


class LocalLeases:
    """:class:`Leases` in the process: a capacity limiter (a lease never needs to expire)."""

    __slots__ = ("_limiter", "limit")

    def __init__(self, limit: int) -> None:
        import anyio

        self.limit = limit
        self._limiter = anyio.CapacityLimiter(limit)

    async def acquire(self, ttl: float) -> Lease:
        token = object()
        await self._limiter.acquire_on_behalf_of(token)
        return _LocalLease(self._limiter, token)


class MemoryStore:
    """``memory://``: the limits live in this process, one set per client.

    The default. Each call of :meth:`pacer`, :meth:`token_budget`,
    :meth:`leases` and :meth:`breaker` makes a new limit: a client's limits are its own, shared by
    every call, batch and retry of that client but not by other clients.
    """

    url = MEMORY_URL
    shared = False

    def __repr__(self) -> str:
        return "MemoryStore()"

    def pacer(
        self,
        key: str,
        count: int | None,
        period: float = 1.0,
        *,
        burst: int = 1,
        margin: float = DEFAULT_MARGIN,
    ) -> Pacer:
        return RateLimiter(count, period, burst=burst, margin=margin)

    def token_budget(
        self, key: str, limit: int, period: float = 60.0, *, margin: float = DEFAULT_MARGIN
    ) -> TokenLimiter:
        return TokenBudget(limit, period, margin=margin)

    def leases(self, key: str, limit: int) -> Leases:
        return LocalLeases(limit)

    def breaker(self, key: str, settings: BreakerSettings) -> Breaker:
        return CircuitBreaker(key, settings)

    async def flush(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
