"""The token budget: at most N tokens in any window of the period, reserved then reconciled."""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

import anyio

from pynector.errors import ConfigurationError

from ._ratelimit import DEFAULT_MARGIN

__all__ = ["TokenBudget", "TokenBudgetError", "TokenLimiter", "TokenReservation"]


class TokenBudgetError(ConfigurationError):
    """A call whose estimated tokens alone exceed the whole budget: it can never fit.

    Raised before anything is sent. Raise the budget or make the call smaller
    (a shorter prompt, a lower ``max_tokens``).

    Attributes:
        tokens: The call's estimate.
        limit: The budget's tokens per period.
        period: The budget's period in seconds.
    """

    def __init__(self, message: str, *, tokens: int, limit: int, period: float) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.limit = limit
        self.period = period


class TokenReservation(Protocol):
    """The tokens one call holds in a budget until it is settled."""

    def settle(self, tokens: int) -> None:
        """Replace the reservation with what the call really used."""
        ...


class TokenLimiter(Protocol):
    """What the client needs of a token budget.

    :class:`TokenBudget` keeps its state in the process; a budget whose state
    lives in a shared store implements the same members.
    """

    limit: int
    period: float

    async def reserve(self, tokens: int) -> TokenReservation:
        """Wait until ``tokens`` fit, and hold them."""
        ...


class _Entry:
    """One reservation in the log: the tokens it holds and when it leaves the window.

    ``at`` is the latest moment the request can have reached the server: its
    start plus the budget's ``hold`` while it is in flight, the end of the
    attempt once it is settled (if sooner). The entry counts until ``at`` plus
    the window, so a request is counted in every window the server can have
    counted it in, however late after its start it was really sent.
    """

    __slots__ = ("_budget", "at", "live", "started", "tokens")

    def __init__(self, budget: TokenBudget, started: float, tokens: int) -> None:
        self._budget = budget
        self.started = started
        self.at = started + budget.hold
        self.tokens = tokens
        self.live = True  # still inside the window (not yet expired)

    def settle(self, tokens: int) -> None:
        """Replace the reservation with ``tokens`` (what the reply reported)."""
        tokens = max(int(tokens), 0)
        # The request reached the server before now: it leaves the window a window from now.
        self.at = min(self.at, anyio.current_time())
        if self.live:
            self._budget._adjust(self, tokens)
        self.tokens = tokens


def _period_name(period: float) -> str:
    return {1.0: "second", 60.0: "minute"}.get(period, f"{period:g} s")


class TokenBudget:
    """At most ``limit`` tokens in any window of ``period`` seconds, counted at the start.

    A call reserves its estimate (prompt plus ``max_tokens``) when it starts;
    once the reply reports its usage the reservation is settled to it, so
    what the reservation over-asked is given back at once and what it
    under-asked is charged. A log of the reservations in the window makes the
    bound hold for every window, not only aligned minutes, as the server
    counts arrivals: an entry leaves the window ``period`` (plus a small
    margin) after the latest moment its request can have reached the server,
    the end of its attempt (when it is settled), or ``hold`` (one second, at
    most the period) after its start while it is in flight. Waiters are
    served first come, first served.

    This is what providers enforce: OpenAI charges the prompt and
    ``max_tokens`` when a request arrives; Anthropic refills a bucket of the
    per-minute capacity continuously, which accepts whatever this log admits.

    Args:
        limit: Tokens allowed per window.
        period: The window's length in seconds (60 for tokens per minute).
        margin: Seconds added to the window for arrival jitter (see
            :class:`RateLimiter`).
    """

    __slots__ = ("_changed", "_lock", "_log", "_used", "hold", "limit", "period", "window")

    def __init__(self, limit: int, period: float = 60.0, *, margin: float = DEFAULT_MARGIN) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"TokenBudget(limit={limit!r}) must be a whole number >= 1")
        if not math.isfinite(period) or period <= 0:
            raise ConfigurationError(f"TokenBudget(period={period!r}) must be a positive number")
        self.limit = limit
        self.period = period
        self.window = period + margin * min(period, 1.0)
        """Seconds a reservation stays in the window (the period plus the margin)."""
        self.hold = min(period, 1.0)
        """Seconds after its start a request in flight is assumed to have been sent by."""
        self._log: deque[_Entry] = deque()
        self._used = 0
        self._lock: anyio.Lock | None = None
        self._changed: anyio.Event | None = None

    @classmethod
    def from_rate(cls, rate: object) -> TokenBudget:
        """Build a budget from ``"90000/m"`` or anything :func:`parse_rate` accepts."""
        from ._ratelimit import parse_rate

        limit, period = parse_rate(rate, "token_limit")
        return cls(limit, period)

    @property
    def used(self) -> int:
        """Tokens held in the current window."""
        self._sweep(anyio.current_time())
        return self._used

    def _expire(self, now: float) -> None:
        log = self._log
        while log and log[0].at <= now - self.window:
            entry = log.popleft()
            entry.live = False
            self._used -= entry.tokens

    def _sweep(self, now: float) -> None:
        """Drop every entry out of the window, also those behind one still in flight."""
        kept: deque[_Entry] = deque()
        for entry in self._log:
            if entry.at <= now - self.window:
                entry.live = False
                self._used -= entry.tokens
            else:
                kept.append(entry)
        self._log = kept

    def _adjust(self, entry: _Entry, tokens: int) -> None:
        self._used += tokens - entry.tokens
        if tokens < entry.tokens and self._changed is not None:
            self._changed.set()  # room was given back: the waiter looks again

    def _wait_needed(self, now: float, tokens: int) -> float:
        """Seconds until ``tokens`` more fit in the window (0 when they fit now)."""
        self._expire(now)
        if self._used + tokens <= self.limit:
            return 0.0
        # A settled entry leaves earlier than its place in the log (behind one in flight).
        self._sweep(now)
        excess = self._used + tokens - self.limit
        if excess <= 0:
            return 0.0
        for entry in sorted(self._log, key=lambda entry: entry.at):
            excess -= entry.tokens
            if excess <= 0:
                return entry.at + self.window - now
        return self.window  # reservations settled above the limit: wait a whole window

    def check(self, tokens: int) -> None:
        """Raise :class:`TokenBudgetError` if ``tokens`` can never fit the budget."""
        if tokens > self.limit:
            raise TokenBudgetError(
                f"this call needs an estimated {tokens} tokens, more than the whole token "
                f"budget of {self.limit} per {_period_name(self.period)} "
                f"(config['token_limit']): it could never be sent. Raise token_limit, or "
                "shorten the prompt or lower max_tokens",
                tokens=tokens,
                limit=self.limit,
                period=self.period,
            )

    async def reserve(self, tokens: int) -> TokenReservation:
        """Wait until ``tokens`` fit in the window, and hold them.

        Returns:
            The reservation: call its ``settle(used)`` with the reply's usage.

        Raises:
            TokenBudgetError: If ``tokens`` exceeds the whole budget: it could never fit.
        """
        self.check(tokens)
        lock = self._lock
        if (lock is None or not lock.locked()) and self._wait_needed(
            anyio.current_time(), tokens
        ) <= 0:
            return self._hold(tokens)
        if lock is None:
            lock = self._lock = anyio.Lock()
        async with lock:
            while (wait := self._wait_needed(anyio.current_time(), tokens)) > 0:
                changed = self._changed = anyio.Event()
                with anyio.move_on_after(wait):
                    await changed.wait()
            self._changed = None
            return self._hold(tokens)

    def _hold(self, tokens: int) -> _Entry:
        entry = _Entry(self, anyio.current_time(), tokens)
        self._log.append(entry)
        self._used += tokens
        return entry
