"""pynector-redis: the limits of pynector shared across processes and machines, on Redis.

Installed, it serves the ``redis://``, ``rediss://`` and ``unix://`` store URLs
through the ``pynector.stores`` entry points: every process whose clients use
the same store and ``limit_key`` shares one paced rate, one token budget, the
pauses a server's 429 asks for, at most N requests in flight, and the state
of every circuit breaker::

    from pynector import Pynector

    config = {"store": "redis://127.0.0.1:6379/0", "rate_limit": "600/m"}
    async with Pynector(transport_type="http", base_url=url, config=config) as client:
        ...

It runs on asyncio and trio (coredis is built on AnyIO) and works with Redis
and Valkey. See ``docs/redis.md``.
"""

from ._breaker import RedisBreaker as RedisBreaker
from ._breaker import RedisBreakerPermit as RedisBreakerPermit
from ._connection import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._jobs import JOB_PREFIX as JOB_PREFIX
from ._jobs import RedisJob as RedisJob
from ._leases import RedisLease as RedisLease
from ._leases import RedisLeases as RedisLeases
from ._pacer import RedisPacer as RedisPacer
from ._store import KEY_PREFIX as KEY_PREFIX
from ._store import RedisStore as RedisStore
from ._tokens import RedisReservation as RedisReservation
from ._tokens import RedisTokenBudget as RedisTokenBudget
from ._version import __version__ as __version__

__all__ = [
    "DEFAULT_TIMEOUT",
    "JOB_PREFIX",
    "KEY_PREFIX",
    "RedisBreaker",
    "RedisBreakerPermit",
    "RedisJob",
    "RedisLease",
    "RedisLeases",
    "RedisPacer",
    "RedisReservation",
    "RedisStore",
    "RedisTokenBudget",
    "__version__",
]
