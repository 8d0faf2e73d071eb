"""The rate limiter: at most N request starts in any window of a given length."""

from __future__ import annotations

import math
from collections import deque

import anyio

from pynector.errors import ConfigurationError

__all__ = ["RateLimiter", "parse_rate"]

_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}


def parse_rate(value: object) -> tuple[int, float]:
    """Parse a rate into ``(count, period_seconds)``.

    Accepts a positive number of requests per second (``10``, ``2.5``) or a
    string ``"N/s"`` or ``"N/m"`` (``"600/m"``; ``sec``, ``second``, ``min``
    and ``minute`` are accepted too). A fractional per-second rate becomes a
    whole count over a longer window (``0.5`` -> 1 per 2 s).

    Raises:
        ConfigurationError: If the value is not one of those forms.
    """
    hint = "use a number of requests per second (10) or a string like '10/s' or '600/m'"
    if isinstance(value, str):
        import re

        match = re.match(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$", value.lower())
        if not match or match.group(2) not in _PERIODS or int(match.group(1)) < 1:
            raise ConfigurationError(f"rate_limit={value!r} is invalid: {hint}")
        return int(match.group(1)), _PERIODS[match.group(2)]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"rate_limit={value!r} is invalid: {hint}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"rate_limit={value!r} is invalid: it must be > 0; {hint}")
    if value >= 1 and float(value).is_integer():
        return int(value), 1.0
    if value >= 1:
        return math.ceil(value), math.ceil(value) / value
    return 1, 1.0 / value


class RateLimiter:
    """Let at most ``count`` operations start in any window of ``period`` seconds.

    A sliding log of the last ``count`` start times makes the bound exact for
    every window, not only for aligned ones. Waiters are served first come,
    first served. :meth:`pause` holds every caller back until a moment (a
    server's Retry-After applies to the whole client, not one request).

    Args:
        count: Starts allowed per window, or ``None`` for no limit (pauses only).
        period: The window's length in seconds.
    """

    __slots__ = ("_lock", "_log", "_paused_until", "count", "period")

    def __init__(self, count: int | None, period: float = 1.0) -> None:
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ConfigurationError(f"RateLimiter(count={count!r}) must be a whole number >= 1")
        if not math.isfinite(period) or period <= 0:
            raise ConfigurationError(f"RateLimiter(period={period!r}) must be a positive number")
        self.count = count
        self.period = period
        self._log: deque[float] = deque(maxlen=count or 1)
        self._paused_until = -math.inf
        self._lock: anyio.Lock | None = None

    @classmethod
    def from_rate(cls, rate: object) -> RateLimiter:
        """Build a limiter from anything :func:`parse_rate` accepts."""
        count, period = parse_rate(rate)
        return cls(count, period)

    @property
    def idle(self) -> bool:
        """True when :meth:`acquire` would return at once without recording anything."""
        return self.count is None and self._paused_until == -math.inf

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (extends, never shortens)."""
        self._paused_until = max(self._paused_until, anyio.current_time() + max(seconds, 0.0))

    def _wait_needed(self, now: float) -> float:
        wait = self._paused_until - now
        if self.count is not None and len(self._log) == self.count:
            wait = max(wait, self._log[0] + self.period - now)
        return wait

    async def acquire(self) -> None:
        """Wait until one more start is allowed, and record it."""
        if self.idle:
            return  # no limit and no pause: nothing to wait for or record
        now = anyio.current_time()
        lock = self._lock
        if (lock is None or not lock.locked()) and self._wait_needed(now) <= 0:
            if self.count is None:
                self._paused_until = -math.inf  # the pause is over
            else:
                self._log.append(now)
            return
        if lock is None:
            lock = self._lock = anyio.Lock()
        async with lock:
            while (wait := self._wait_needed(anyio.current_time())) > 0:  # noqa: ASYNC110
                await anyio.sleep(wait)
            if self.count is None:
                self._paused_until = -math.inf  # the pause is over
            else:
                self._log.append(anyio.current_time())
