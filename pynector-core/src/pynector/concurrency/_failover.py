"""What a client does when its shared store cannot be reached: ``config["store_failure"]``.

``"closed"`` (the default): wait for the store, retrying with a capped
backoff, within the call's deadline (and any deadline of the caller's
enclosing scope); then raise :class:`~pynector.errors.StoreUnavailableError`.
Nothing is sent over a limit the store keeps.

``"open"``: use a per-process limit of the same settings instead, log one
warning, and try the store again after a short while (the store's own state
takes over again as soon as it answers).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from pynector.errors import StoreUnavailableError

from ._breaker import Breaker, BreakerPermit
from ._ratelimit import Pacer
from ._store import Lease, Leases
from ._tokens import TokenLimiter, TokenReservation

__all__ = ["FailoverBreaker", "FailoverBudget", "FailoverLeases", "FailoverPacer", "StoreGuard"]

logger = logging.getLogger("pynector.store")

T = TypeVar("T")

_RETRY_OPEN_AFTER = 5.0  # seconds on the local limits before the store is tried again
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 1.0


class StoreGuard:
    """The failure policy of one client's shared limits.

    Args:
        url: The store's URL, password masked.
        mode: ``"closed"`` or ``"open"``.
        wait: Seconds a call waits for the store when no deadline of its own is given.
    """

    __slots__ = ("_local_until", "_warned", "mode", "url", "wait")

    def __init__(self, url: str, mode: str, wait: float) -> None:
        self.url = url
        self.mode = mode
        self.wait = wait
        self._local_until = -math.inf  # open mode: on the local limits until then
        self._warned = False

    async def run(
        self,
        shared: Callable[[], Awaitable[T]],
        local: Callable[[], Awaitable[T]],
        wait: float | None = None,
    ) -> T:
        """Run ``shared`` against the store; on failure, wait for it or fall back to ``local``."""
        if self.mode == "open" and time.monotonic() < self._local_until:
            return await local()
        try:
            return await shared()  # the usual case: nothing else to compute
        except StoreUnavailableError as exc:
            if self.mode == "open":
                self._fall_back(exc)
                return await local()
            failure = exc
        started = time.monotonic()
        limit = started + (self.wait if wait is None else wait)
        scope_deadline = anyio.current_effective_deadline()
        if math.isfinite(scope_deadline):
            # Fail with the store's error just before the caller's own scope would cancel.
            limit = min(limit, started + (scope_deadline - anyio.current_time()))
        backoff = _FIRST_BACKOFF
        while True:
            now = time.monotonic()
            if now + backoff >= limit:
                raise StoreUnavailableError(
                    f"the limit store {self.url} could not be reached for "
                    f"{now - started:.1f} s ({failure}); nothing was sent. Start the store or "
                    "fix config['store'], or set config['store_failure']='open' to fall "
                    "back to per-process limits while it is down",
                    url=self.url,
                ) from failure
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
            try:
                return await shared()
            except StoreUnavailableError as exc:
                failure = exc

    def _fall_back(self, exc: StoreUnavailableError) -> None:
        self._local_until = time.monotonic() + _RETRY_OPEN_AFTER
        if not self._warned:
            self._warned = True
            logger.warning(
                "the limit store %s is unreachable (%s): falling back to per-process limits "
                "(config['store_failure']='open'); the store is tried again every %g s",
                self.url,
                exc,
                _RETRY_OPEN_AFTER,
            )


class FailoverPacer:
    """A shared :class:`Pacer` guarded by a :class:`StoreGuard`, with a local stand-in."""

    __slots__ = ("guard", "local", "shared")

    def __init__(self, shared: Pacer, local: Pacer, guard: StoreGuard) -> None:
        self.shared = shared
        self.local = local
        self.guard = guard

    @property
    def idle(self) -> bool:
        # The store may hold another process's pause: only the shared pacer can tell.
        return self.shared.idle

    async def acquire(self, wait: float | None = None) -> None:
        await self.guard.run(self.shared.acquire, self.local.acquire, wait)

    def pause(self, seconds: float) -> None:
        self.shared.pause(seconds)
        self.local.pause(seconds)

    def hint(self, remaining: int, reset: float) -> None:
        self.shared.hint(remaining, reset)
        self.local.hint(remaining, reset)


class FailoverBudget:
    """A shared :class:`TokenLimiter` guarded by a :class:`StoreGuard`, with a local stand-in."""

    __slots__ = ("guard", "limit", "local", "period", "shared")

    def __init__(self, shared: TokenLimiter, local: TokenLimiter, guard: StoreGuard) -> None:
        self.shared = shared
        self.local = local
        self.guard = guard
        self.limit = shared.limit
        self.period = shared.period

    async def reserve(self, tokens: int, wait: float | None = None) -> TokenReservation:
        shared, local = self.shared, self.local
        return await self.guard.run(
            lambda: shared.reserve(tokens), lambda: local.reserve(tokens), wait
        )


class FailoverLeases:
    """Shared :class:`Leases` guarded by a :class:`StoreGuard`, with local stand-ins."""

    __slots__ = ("guard", "limit", "local", "shared")

    def __init__(self, shared: Leases, local: Leases, guard: StoreGuard) -> None:
        self.shared = shared
        self.local = local
        self.guard = guard
        self.limit = shared.limit

    async def acquire(self, ttl: float, wait: float | None = None) -> Lease:
        shared, local = self.shared, self.local
        return await self.guard.run(lambda: shared.acquire(ttl), lambda: local.acquire(ttl), wait)


class FailoverBreaker:
    """A shared :class:`Breaker` guarded by a :class:`StoreGuard`, with a local stand-in.

    A permit records into the breaker that gave it: a call let through by the
    local stand-in while the store was down is counted here only.
    """

    __slots__ = ("guard", "key", "local", "shared")

    def __init__(self, shared: Breaker, local: Breaker, guard: StoreGuard) -> None:
        self.shared = shared
        self.local = local
        self.guard = guard
        self.key = shared.key

    async def acquire(self, wait: float | None = None) -> BreakerPermit:
        return await self.guard.run(self.shared.acquire, self.local.acquire, wait)
