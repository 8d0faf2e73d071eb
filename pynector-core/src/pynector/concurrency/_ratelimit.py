"""The rate limiter: request starts paced at ``period / count``, with an optional burst."""

from __future__ import annotations

import math
from typing import Protocol

import anyio

from pynector.errors import ConfigurationError

__all__ = ["DEFAULT_MARGIN", "Pacer", "RateLimiter", "parse_rate"]

_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}

DEFAULT_MARGIN = 0.02
"""The spacing's share kept free for arrival jitter (see :class:`RateLimiter`)."""


def parse_rate(value: object, key: str = "rate_limit") -> tuple[int, float]:
    """Parse a rate into ``(count, period_seconds)``.

    Accepts a positive number per second (``10``, ``2.5``) or a string
    ``"N/s"`` or ``"N/m"`` (``"600/m"``; ``sec``, ``second``, ``min`` and
    ``minute`` are accepted too). A fractional per-second rate becomes a whole
    count over a longer window (``0.5`` -> 1 per 2 s).

    Args:
        value: The rate.
        key: The setting named in the error (``rate_limit``, ``token_limit``).

    Raises:
        ConfigurationError: If the value is not one of those forms.
    """
    unit = "tokens" if key == "token_limit" else "requests"
    example = "'90000/m'" if key == "token_limit" else "'10/s' or '600/m'"
    hint = f"use a number of {unit} per second (10) or a string like {example}"
    if isinstance(value, str):
        import re

        match = re.match(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$", value.lower())
        if not match or match.group(2) not in _PERIODS or int(match.group(1)) < 1:
            raise ConfigurationError(f"{key}={value!r} is invalid: {hint}")
        return int(match.group(1)), _PERIODS[match.group(2)]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{key}={value!r} is invalid: {hint}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{key}={value!r} is invalid: it must be > 0; {hint}")
    if value >= 1 and float(value).is_integer():
        return int(value), 1.0
    if value >= 1:
        return math.ceil(value), math.ceil(value) / value
    return 1, 1.0 / value


class Pacer(Protocol):
    """What the client needs of a request-rate limiter.

    :class:`RateLimiter` keeps its state in the process; a limiter whose state
    lives in a shared store implements the same four members.
    """

    @property
    def idle(self) -> bool:
        """True when :meth:`acquire` would return at once without recording anything."""
        ...

    async def acquire(self) -> None:
        """Wait until one more start is allowed, and record it."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (extends, never shortens)."""
        ...

    def hint(self, remaining: int, reset: float) -> None:
        """The server allows ``remaining`` more starts in the next ``reset`` seconds: slow down."""
        ...


class RateLimiter:
    """Pace starts at ``count`` per ``period`` seconds (GCRA), with an optional burst.

    The generic cell rate algorithm: each start moves a theoretical arrival
    time on by the spacing ``period / count``; a start is allowed when that
    time is at most ``burst - 1`` spacings ahead of now. With ``burst=1`` the
    starts are evenly spaced, so no window of any length sees more than its
    share, whatever the server counts with (a sliding window, fixed windows
    or a token bucket). ``burst=b`` lets ``b`` starts go at once after a quiet
    spell, then paces again.

    The spacing is stretched by ``margin`` (a fraction, 2% by default) of the
    spacing, and by at most ``margin`` seconds when the spacing is longer than
    one second: a start is counted here, before connecting and sending, so
    the server sees arrivals a little jittered. The margin keeps them within
    the limit in every one-second (and longer) window as the server counts.

    Waiters are served first come, first served. :meth:`pause` holds every
    caller back until a moment (a server's Retry-After applies to the whole
    client, not one request); after a pause the starts are paced again, with
    no burst.

    Args:
        count: Starts allowed per ``period``, or ``None`` for no limit (pauses only).
        period: The period in seconds.
        burst: Starts allowed at once (1: strictly paced).
        margin: The spacing's share kept free for arrival jitter (0 for none).
    """

    __slots__ = (
        "_hint_interval",
        "_hint_until",
        "_lock",
        "_paused_until",
        "_slack",
        "_tat",
        "burst",
        "count",
        "idle",
        "interval",
        "margin",
        "period",
    )

    def __init__(
        self,
        count: int | None,
        period: float = 1.0,
        *,
        burst: int = 1,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ConfigurationError(f"RateLimiter(count={count!r}) must be a whole number >= 1")
        if not math.isfinite(period) or period <= 0:
            raise ConfigurationError(f"RateLimiter(period={period!r}) must be a positive number")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigurationError(f"RateLimiter(burst={burst!r}) must be a whole number >= 1")
        if not isinstance(margin, int | float) or not 0 <= margin < 1:
            raise ConfigurationError(f"RateLimiter(margin={margin!r}) must be >= 0 and < 1")
        self.count = count
        self.period = period
        self.burst = burst
        self.margin = margin
        spacing = period / count if count else 0.0
        self.interval = spacing + margin * min(spacing, 1.0)
        """Seconds between two paced starts (the spacing plus the margin)."""
        self._slack = min(margin / 2, self.interval)
        self._tat = -math.inf  # theoretical arrival time of the next start
        self._paused_until = -math.inf
        self.idle = count is None
        """True when :meth:`acquire` would return at once without recording anything.

        No rate and no pause (a plain attribute, kept with the pause: the
        client reads it on every request).
        """
        self._hint_until = -math.inf  # a server's hint paces the starts until then
        self._hint_interval = 0.0
        self._lock: anyio.Lock | None = None

    @classmethod
    def from_rate(cls, rate: object, *, burst: int = 1) -> RateLimiter:
        """Build a limiter from anything :func:`parse_rate` accepts."""
        count, period = parse_rate(rate)
        return cls(count, period, burst=burst)

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (extends, never shortens)."""
        until = anyio.current_time() + max(seconds, 0.0)
        if until > self._paused_until:
            self._paused_until = until
            self.idle = False
            if self.count is not None:
                # Paced again from the end of the pause: no burst into a server that just refused.
                self._tat = max(self._tat, until + (self.burst - 1) * self.interval)

    def hint(self, remaining: int, reset: float) -> None:
        """Spread ``remaining`` starts over the ``reset`` seconds a server announced.

        A server's rate-limit headers say how many more requests it accepts
        before its limit resets. Until the reset, starts are kept
        ``reset / remaining`` apart (stretched by the margin), so the
        remaining ones are spread over the time left; when none remain, every
        caller waits for the reset. A hint only ever slows the limiter down: one
        that allows more than the configured rate changes nothing.

        Args:
            remaining: Starts the server still accepts before the reset.
            reset: Seconds until the reset.
        """
        if remaining < 0 or not math.isfinite(reset) or reset <= 0:
            return
        spacing = reset / max(remaining, 1) * (1 + self.margin)
        if spacing <= self.interval:
            return  # no slower than the configured pace: nothing to do
        now = anyio.current_time()
        if remaining == 0:
            self._hint_until = -math.inf  # after the reset: the configured pace again
            self.pause(spacing)
            return
        # The next start may go now; the ones after it keep the spacing until the reset.
        self._hint_until = now + reset
        self._hint_interval = spacing
        if self._paused_until == -math.inf:
            self._paused_until = now  # no longer idle: the starts are recorded
            self.idle = False

    def _wait_needed(self, now: float) -> float:
        wait = self._paused_until - now
        if self.count is not None:
            wait = max(wait, self._tat - (self.burst - 1) * self.interval - now)
        return wait

    def _record(self, now: float, scheduled: bool = False) -> None:
        if now < self._hint_until:
            # A server's hint: the next start waits its spacing (a pause only extends).
            self._paused_until = max(self._paused_until, now + self._hint_interval)
        elif self.count is None:
            self._paused_until = -math.inf  # the pause is over
            self.idle = True
        if self.count is None:
            return
        if scheduled:
            # A waiter woken a little late by the event loop keeps the schedule
            # (half the margin's seconds): otherwise every late wake-up would
            # slow the rate a little more.
            self._tat = max(self._tat, now - self._slack) + self.interval
        else:
            self._tat = max(self._tat, now) + self.interval

    async def acquire(self) -> None:
        """Wait until one more start is allowed, and record it."""
        if self.idle:
            return  # no limit and no pause: nothing to wait for or record
        now = anyio.current_time()
        lock = self._lock
        if (lock is None or not lock.locked()) and self._wait_needed(now) <= 0:
            self._record(now)
            return
        if lock is None:
            lock = self._lock = anyio.Lock()
        async with lock:
            scheduled = False
            while (wait := self._wait_needed(anyio.current_time())) > 0:
                await anyio.sleep(wait)
                scheduled = True
            self._record(anyio.current_time(), scheduled)
