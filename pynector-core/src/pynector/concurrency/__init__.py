"""The concurrency helpers the client is built on, usable on their own.

- :class:`AdaptiveLimiter`: an in-flight limit that follows the server (AIMD
  with a latency gradient): overload answers and timeouts cut it.
- :class:`deadline`: a total deadline that raises pynector's ``TimeoutError``.
- :class:`WorkerPool`: a fixed set of workers pulling from any iterable.
- :class:`RetryPolicy`: bounded attempts, jittered exponential backoff with a
  cap, and server-chosen waits (Retry-After) within a bound.
- :class:`RetryBudget`: retries across a client limited to a share of its
  first attempts over a sliding window, with a small floor.
- :class:`HedgePolicy` / :class:`LatencyHistogram`: when a slow call gets a
  second copy (fixed seconds or a percentile of recent latencies, kept in
  fixed memory).
- :class:`CircuitBreaker`: a key whose calls keep failing fails at once for
  a cooldown, then lets a probe through (:class:`BreakerSettings`).
- :class:`RateLimiter`: starts paced at period / count (GCRA), with an
  optional burst, pausable by a 429.
- :class:`TokenBudget`: at most N tokens in any window, reserved from an
  estimate and settled to the reply's usage.
- :func:`parse_retry_after` / :func:`retry_after_from_headers`: a server's
  Retry-After (seconds or HTTP date; ``retry-after-ms``) in seconds, clamped;
  :func:`should_retry_from_headers`: the server's ``x-should-retry``.
- :class:`Store` / :class:`MemoryStore`: where the limits keep their state
  (``memory://`` in the process; ``pynector-redis`` shares it across a fleet),
  with :class:`Leases` for ``config["shared_concurrency"]``.
- :class:`Job` / :func:`job_store`: a batch job kept in a shared store, worked
  by many processes (``pynector batch --job NAME``).
- :func:`server_hint` / :func:`parse_reset`: the providers' rate-limit headers
  (OpenAI ``x-ratelimit-*``, Anthropic ``anthropic-ratelimit-*``) as starts
  remaining before a reset, which :meth:`RateLimiter.hint` spreads out.

All of them run on asyncio and trio through AnyIO.
"""

from ._adaptive import AdaptiveLimiter as AdaptiveLimiter
from ._breaker import PROBE_WAIT as PROBE_WAIT
from ._breaker import Breaker as Breaker
from ._breaker import BreakerPermit as BreakerPermit
from ._breaker import BreakerSettings as BreakerSettings
from ._breaker import CircuitBreaker as CircuitBreaker
from ._deadline import deadline as deadline
from ._deadline import remaining_time as remaining_time
from ._hedge import HedgePolicy as HedgePolicy
from ._hedge import LatencyHistogram as LatencyHistogram
from ._hedge import parse_hedge_after as parse_hedge_after
from ._hints import parse_reset as parse_reset
from ._hints import server_hint as server_hint
from ._jobs import DEFAULT_JOB_TTL as DEFAULT_JOB_TTL
from ._jobs import DEFAULT_LEASE as DEFAULT_LEASE
from ._jobs import Job as Job
from ._jobs import JobClaim as JobClaim
from ._jobs import JobInput as JobInput
from ._jobs import JobResult as JobResult
from ._jobs import JobStatus as JobStatus
from ._jobs import JobStore as JobStore
from ._jobs import job_store as job_store
from ._pool import WorkerPool as WorkerPool
from ._ratelimit import DEFAULT_MARGIN as DEFAULT_MARGIN
from ._ratelimit import Pacer as Pacer
from ._ratelimit import RateLimiter as RateLimiter
from ._ratelimit import parse_rate as parse_rate
from ._retry import RetryDecision as RetryDecision
from ._retry import RetryPolicy as RetryPolicy
from ._retry_after import MAX_RETRY_AFTER as MAX_RETRY_AFTER
from ._retry_after import parse_retry_after as parse_retry_after
from ._retry_after import retry_after_from_headers as retry_after_from_headers
from ._retry_after import should_retry_from_headers as should_retry_from_headers
from ._retry_budget import RetryBudget as RetryBudget
from ._store import MEMORY_URL as MEMORY_URL
from ._store import Lease as Lease
from ._store import Leases as Leases
from ._store import LocalLeases as LocalLeases
from ._store import MemoryStore as MemoryStore
from ._store import Store as Store
from ._tokens import TokenBudget as TokenBudget
from ._tokens import TokenBudgetError as TokenBudgetError
from ._tokens import TokenLimiter as TokenLimiter
from ._tokens import TokenReservation as TokenReservation

__all__ = [
    "DEFAULT_JOB_TTL",
    "DEFAULT_LEASE",
    "DEFAULT_MARGIN",
    "MAX_RETRY_AFTER",
    "MEMORY_URL",
    "PROBE_WAIT",
    "AdaptiveLimiter",
    "Breaker",
    "BreakerPermit",
    "BreakerSettings",
    "CircuitBreaker",
    "HedgePolicy",
    "Job",
    "JobClaim",
    "JobInput",
    "JobResult",
    "JobStatus",
    "JobStore",
    "LatencyHistogram",
    "Lease",
    "Leases",
    "LocalLeases",
    "MemoryStore",
    "Pacer",
    "RateLimiter",
    "RetryBudget",
    "RetryDecision",
    "RetryPolicy",
    "Store",
    "TokenBudget",
    "TokenBudgetError",
    "TokenLimiter",
    "TokenReservation",
    "WorkerPool",
    "deadline",
    "job_store",
    "parse_hedge_after",
    "parse_rate",
    "parse_reset",
    "parse_retry_after",
    "remaining_time",
    "retry_after_from_headers",
    "server_hint",
    "should_retry_from_headers",
]
