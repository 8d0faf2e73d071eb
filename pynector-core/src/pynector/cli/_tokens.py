"""A tokens-per-minute budget for ``pynector batch --tpm``.

Providers limit tokens per minute as well as requests. Before a request is
sent its cost is estimated from the request itself (no tokenizer, no network)
by the transport's :meth:`~pynector.cli.CLISupport.estimate_tokens` (the sdk
transport counts a chat's text and its output allowance; the default counts
all the text, four characters a token), and a sliding window holds each attempt
back until the window has room.
"""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["TokenBudget"]


class TokenBudget:
    """At most ``limit`` estimated tokens start in any window of ``period`` seconds.

    A log of the recent starts and their costs makes the bound hold for every
    window, not only aligned minutes. Waiters are served first come, first served.

    Args:
        limit: Tokens allowed per window.
        period: The window's length in seconds (60 for tokens per minute).
    """

    __slots__ = ("_lock", "_log", "_used", "limit", "period")

    def __init__(self, limit: int, period: float = 60.0) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("TokenBudget needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._log: deque[tuple[float, int]] = deque()
        self._used = 0
        self._lock: anyio.Lock | None = None

    def _expire(self, now: float) -> None:
        log = self._log
        while log and log[0][0] <= now - self.period:
            self._used -= log.popleft()[1]

    def _wait_needed(self, now: float, tokens: int) -> float:
        """Seconds until ``tokens`` more fit in the window (0 when they fit now)."""
        self._expire(now)
        excess = self._used + tokens - self.limit
        if excess <= 0:
            return 0.0
        for started, cost in self._log:
            excess -= cost
            if excess <= 0:
                return started + self.period - now
        return self.period  # pragma: no cover - tokens > limit is refused earlier

    async def acquire(self, tokens: int) -> None:
        """Wait until ``tokens`` fit in the window, and record them.

        Raises:
            ValueError: If ``tokens`` exceeds the whole budget: it could never fit.
        """
        if tokens > self.limit:
            raise ValueError(f"{tokens} tokens can never fit a budget of {self.limit}")
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            while (wait := self._wait_needed(anyio.current_time(), tokens)) > 0:  # noqa: ASYNC110
                await anyio.sleep(wait)
            self._log.append((anyio.current_time(), tokens))
            self._used += tokens
