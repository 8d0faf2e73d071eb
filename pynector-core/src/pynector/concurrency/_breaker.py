"""Circuit breakers: a key that keeps failing fails at once for a cooldown, then is probed.

A breaker watches the outcomes of the calls made under one key (HTTP: the
origin; SDK: the provider and model). It is **closed** while things work.
When, over a sliding ``window`` of seconds holding at least
``minimum_calls`` outcomes, the share of failures reaches ``failure_ratio``,
or when ``minimum_calls`` calls in a row have failed, it **opens**: for
``cooldown`` seconds every call fails at once with
:class:`~pynector.errors.CircuitOpenError`, without touching the network.
Then it is **half-open**: ``probes`` calls are let through; the first that
succeeds closes the breaker, one that fails opens it for another cooldown.

Only failures that say the server is unhealthy count (:func:`unhealthy`):
connection errors, timeouts, 5xx (503 and 529 included) and an SDK's
overload; a 4xx answer counts as a success (the server is up and answering)
and a 429 not at all (a rate limit is not an outage).

The defaults follow Resilience4j's failure ratio (50 %) and Polly's short
break (5 s) with one probe; the window and the minimum are sized for API
clients: 20 calls in 10 s. The run of failures in a row sees an outage
within ``minimum_calls`` calls even when the window still holds the many
successes of the seconds before it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from pynector.errors import (
    CircuitOpenError,
    ConfigurationError,
    ConnectionError,
    HTTPStatusError,
    RateLimitError,
    SDKError,
    TimeoutError,
)

__all__ = [
    "PROBE_WAIT",
    "Breaker",
    "BreakerPermit",
    "BreakerSettings",
    "CircuitBreaker",
    "unhealthy",
]

PROBE_WAIT = 0.5
"""The ``retry_after`` of a call refused while a half-open breaker's probes are out."""

_BUCKETS = 10  # the window is counted in this many buckets


def _number(name: str, value: object, minimum: float, *, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"config['circuit_breaker'][{name!r}]={value!r} is invalid: it must be a number"
        )
    if whole and not isinstance(value, int):
        raise ConfigurationError(
            f"config['circuit_breaker'][{name!r}]={value!r} is invalid: it must be a whole number"
        )
    if not math.isfinite(value) or value < minimum:
        raise ConfigurationError(
            f"config['circuit_breaker'][{name!r}]={value!r} is invalid: it must be a finite "
            f"number >= {minimum:g}"
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """When a breaker opens and for how long.

    Args:
        failure_ratio: Share of failures (0 to 1, above 0) over the window that opens it.
        minimum_calls: Outcomes the window must hold before the ratio is judged.
        window: The sliding window, in seconds.
        cooldown: Seconds an open breaker refuses every call.
        probes: Calls a half-open breaker lets through at once.

    Raises:
        ConfigurationError: For a value out of range, naming
            ``config['circuit_breaker'][key]``.
    """

    failure_ratio: float = 0.5
    minimum_calls: int = 20
    window: float = 10.0
    cooldown: float = 5.0
    probes: int = 1

    def __post_init__(self) -> None:
        ratio = _number("failure_ratio", self.failure_ratio, 0.0)
        if ratio <= 0 or ratio > 1:
            raise ConfigurationError(
                f"config['circuit_breaker']['failure_ratio']={self.failure_ratio!r} is invalid: "
                "it must be above 0 and at most 1, e.g. 0.5"
            )
        _number("minimum_calls", self.minimum_calls, 1, whole=True)
        if _number("window", self.window, 0.0) <= 0:
            raise ConfigurationError(
                f"config['circuit_breaker']['window']={self.window!r} is invalid: it must be "
                "a positive number of seconds, e.g. 10"
            )
        _number("cooldown", self.cooldown, 0.0)
        _number("probes", self.probes, 1, whole=True)

    @classmethod
    def parse(cls, value: object) -> BreakerSettings | None:
        """``config["circuit_breaker"]``: ``True`` (defaults), ``False``/``None`` or a mapping.

        Raises:
            ConfigurationError: For anything else, an unknown key or a bad value.
        """
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, BreakerSettings):
            return value
        from collections.abc import Mapping

        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f"config['circuit_breaker']={value!r} is invalid: expected True, False or a "
                "mapping such as {'failure_ratio': 0.5, 'minimum_calls': 20, 'window': 10, "
                "'cooldown': 5, 'probes': 1}"
            )
        known = cls.__dataclass_fields__
        unknown = sorted(str(key) for key in value if key not in known)
        if unknown:
            raise ConfigurationError(
                f"config['circuit_breaker'] has unknown keys {unknown}; its keys: "
                f"{', '.join(known)}"
            )
        return cls(**value)


def unhealthy(error: BaseException) -> bool | None:
    """Whether an outcome says the server is unhealthy: the breaker's rule.

    Returns:
        ``True`` for a failure that counts (a connection error, a timeout, a
        5xx, an SDK's overload or other transient server error); ``False``
        for an answer from a working server (any other HTTP status but 429);
        ``None`` for what says nothing of the server's health (a 429, a
        cancellation, a bad request that never left, an open breaker).
    """
    if isinstance(error, RateLimitError | CircuitOpenError):
        return None
    if isinstance(error, HTTPStatusError):
        return error.status_code >= 500
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    if isinstance(error, SDKError):
        # An error event of the API (overloaded_error, api_error, ...); a rate limit is not.
        return True if error.retryable and "rate_limit" not in str(error) else None
    return None


class BreakerPermit(Protocol):
    """One call let through by a :class:`Breaker`; told the call's outcome once."""

    def record(self, failed: bool | None) -> None:
        """The call ended: ``True`` failed (unhealthy), ``False`` succeeded, ``None`` neither."""
        ...


class Breaker(Protocol):
    """A circuit breaker for one key, in the process or in a shared store."""

    key: str

    async def acquire(self) -> BreakerPermit:
        """Let one call through, or refuse it.

        Raises:
            CircuitOpenError: The breaker is open, or half-open with its probes out.
            StoreUnavailableError: A shared store's breaker could not reach the store.
        """
        ...


class _Permit:
    __slots__ = ("_breaker", "_generation", "_probe")

    def __init__(self, breaker: CircuitBreaker, generation: int, probe: bool) -> None:
        self._breaker: CircuitBreaker | None = breaker
        self._generation = generation
        self._probe = probe

    def record(self, failed: bool | None) -> None:
        breaker, self._breaker = self._breaker, None
        if breaker is not None:
            breaker._record(self._generation, self._probe, failed)


class CircuitBreaker:
    """A circuit breaker in this process (``memory://``), for one key.

    Counts outcomes in ``10`` buckets over the window; :meth:`admit` and the
    permit's ``record`` are a few integer operations. Not thread-safe: one
    event loop uses it.

    Args:
        key: What the breaker guards (named in its errors; never a secret).
        settings: When it opens and for how long; the defaults when omitted.
    """

    __slots__ = (
        "_calls",
        "_failures",
        "_generation",
        "_now",
        "_open_until",
        "_probes_out",
        "_run",
        "_width",
        "key",
        "settings",
    )

    def __init__(self, key: str = "default", settings: BreakerSettings | None = None) -> None:
        self.key = key
        self.settings = BreakerSettings() if settings is None else settings
        self._width = self.settings.window / _BUCKETS
        self._calls = [0] * _BUCKETS
        self._failures = [0] * _BUCKETS
        self._now = self._bucket()
        self._open_until = 0.0  # 0: closed; else open until then, half-open after
        self._probes_out = 0
        self._run = 0  # counted failures in a row
        self._generation = 0  # a permit of an earlier closed period records nothing

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.key!r}, {self.state})"

    def _bucket(self) -> int:
        return int(time.monotonic() / self._width)

    def _advance(self) -> int:
        now = self._bucket()
        last = self._now
        if now != last:
            for bucket in range(last + 1, last + 1 + min(now - last, _BUCKETS)):
                slot = bucket % _BUCKETS
                self._calls[slot] = 0
                self._failures[slot] = 0
            self._now = now
        return now % _BUCKETS

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"``."""
        if not self._open_until:
            return "closed"
        return "open" if time.monotonic() < self._open_until else "half_open"

    @property
    def retry_after(self) -> float:
        """Seconds the breaker stays open (0 when closed or half-open)."""
        return max(self._open_until - time.monotonic(), 0.0) if self._open_until else 0.0

    def admit(self) -> _Permit:
        """Let one call through, or refuse it (no wait, no I/O).

        Raises:
            CircuitOpenError: The breaker is open, or half-open with its probes out.
        """
        if not self._open_until:
            return _Permit(self, self._generation, False)
        left = self._open_until - time.monotonic()
        if left > 0:
            raise CircuitOpenError.refusing(self.key, left)
        if self._probes_out >= self.settings.probes:
            raise CircuitOpenError.refusing(self.key, PROBE_WAIT, probing=True)
        self._probes_out += 1
        return _Permit(self, self._generation, True)

    async def acquire(self) -> _Permit:
        """:meth:`admit`, as the :class:`Breaker` protocol's coroutine."""
        return self.admit()

    def _trip(self) -> None:
        self._open_until = time.monotonic() + self.settings.cooldown
        self._generation += 1
        self._probes_out = 0
        self._run = 0
        self._calls = [0] * _BUCKETS
        self._failures = [0] * _BUCKETS

    def _record(self, generation: int, probe: bool, failed: bool | None) -> None:
        if generation != self._generation:
            return  # admitted before the breaker last opened: stale
        if probe:
            self._probes_out = max(self._probes_out - 1, 0)
            if failed:
                self._trip()
            elif failed is False:
                self._open_until = 0.0  # closed again, with an empty window
                self._generation += 1
                self._probes_out = 0
            return
        if failed is None or self._open_until:
            return
        slot = self._advance()
        self._calls[slot] += 1
        if not failed:
            self._run = 0
            return
        self._failures[slot] += 1
        self._run += 1
        calls = sum(self._calls)
        settings = self.settings
        if self._run >= settings.minimum_calls or (
            calls >= settings.minimum_calls
            and sum(self._failures) >= settings.failure_ratio * calls
        ):
            self._trip()
