"""The shared in-flight slots: leases in a Redis sorted set, each expiring on its own."""

from __future__ import annotations

import itertools
import uuid

import anyio

from pynector.concurrency import Lease
from pynector.errors import ConfigurationError, StoreUnavailableError

from ._connection import Connection
from ._polling import Poller
from ._scripts import LEASE, RELEASE

__all__ = ["RedisLease", "RedisLeases"]


class RedisLease:
    """One slot of a :class:`RedisLeases`, held until released or expired."""

    __slots__ = ("_leases", "id")

    def __init__(self, leases: RedisLeases, id: str) -> None:
        self._leases: RedisLeases | None = leases
        self.id = id

    def __repr__(self) -> str:
        return f"RedisLease({self.id!r}, released={self._leases is None})"

    async def release(self) -> None:
        """Give the slot back (at most once; a second call does nothing).

        A release that cannot reach Redis raises nothing: the slot comes back
        when its lease expires.
        """
        leases, self._leases = self._leases, None
        if leases is not None:
            await leases._release(self.id)


class RedisLeases:
    """At most ``limit`` slots held at once across every process sharing the key.

    A slot is an entry of a sorted set scored by its expiry (Redis's clock);
    expired entries are dropped by the script that takes a slot, so a process
    killed while holding slots gives them back within their ``ttl``. A full
    set is looked at again no later than its earliest expiry, and sooner
    (capped backoff), since other processes release slots unannounced; one
    waiter per process looks, the others queue behind it.
    """

    __slots__ = ("_connection", "_ids", "_key", "_lock", "_poller", "_prefix", "limit")

    def __init__(self, connection: Connection, key: str, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"leases(limit={limit!r}) must be a whole number >= 1")
        self.limit = limit
        self._connection = connection
        self._key = key
        self._prefix = uuid.uuid4().hex
        self._ids = itertools.count()
        self._lock: anyio.Lock | None = None
        self._poller = Poller()

    def __repr__(self) -> str:
        return f"RedisLeases({self._key!r}, limit={self.limit})"

    async def acquire(self, ttl: float) -> Lease:
        """Wait for a free slot and hold it for at most ``ttl`` seconds.

        Raises:
            StoreUnavailableError: If Redis cannot be reached.
        """
        if not ttl > 0:
            raise ConfigurationError(f"acquire(ttl={ttl!r}) must be a positive number of seconds")
        if self._lock is None:
            self._lock = anyio.Lock()
        id = f"{self._prefix}:{next(self._ids)}"
        async with self._lock:
            while True:
                reply = await self._connection.run(LEASE, [self._key], [self.limit, repr(ttl), id])
                if int(reply[0]):
                    self._poller.reset()
                    return RedisLease(self, id)
                await self._poller.wait(float(reply[1]))

    async def _release(self, id: str) -> None:
        try:
            # Shielded: a call cancelled while holding a slot still gives it back
            # (within the round trip's timeout).
            with anyio.CancelScope(shield=True):
                await self._connection.run(RELEASE, [self._key], [id])
        except StoreUnavailableError:
            return  # the lease expires by itself
        self._poller.wake()
