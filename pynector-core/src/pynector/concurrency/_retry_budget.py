"""The retry budget: retries (and hedges) limited to a share of first attempts.

During an outage every call fails and every caller retries: plain retries
multiply the load on a server that is already down (a retry storm). A budget
caps the extra attempts of a whole client at ``ratio`` of its first attempts
over a sliding ``window``, plus a small floor of ``min_per_second`` so that a
quiet client can still retry, as gRPC's retry throttling and Finagle's
``RetryBudget`` do. A retry over budget is not made: the caller raises the
last error, marked ``budget_exhausted``.
"""

from __future__ import annotations

import math
import time

from pynector.errors import ConfigurationError

__all__ = ["RetryBudget"]


class RetryBudget:
    """At most ``ratio`` x first attempts + ``min_per_second`` x ``window`` retries per window.

    Counts in one-second buckets over the last ``window`` seconds; both
    :meth:`record_request` (on every first attempt) and :meth:`try_retry` are
    a few integer operations.

    Args:
        ratio: Retries allowed per first attempt (0.2: one retry for five calls).
        min_per_second: Retries allowed per second of the window whatever the traffic.
        window: The sliding window, in whole seconds.
    """

    __slots__ = (
        "_counts",
        "_current",
        "_now",
        "_retries",
        "min_per_second",
        "ratio",
        "window",
    )

    def __init__(self, ratio: float = 0.2, min_per_second: float = 3.0, window: int = 10) -> None:
        for name, value in (("ratio", ratio), ("min_per_second", min_per_second)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"RetryBudget({name}={value!r}) must be a number >= 0")
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"RetryBudget({name}={value!r}) must be a number >= 0")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigurationError(f"RetryBudget(window={window!r}) must be a whole number >= 1")
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.window = window
        self._counts = [0] * window  # first attempts per second, a ring
        self._retries = [0] * window  # retries per second, the same ring
        self._now = int(time.monotonic())
        self._current = 0  # first attempts in second _now not yet in the ring

    def _advance(self) -> int:
        now = int(time.monotonic())
        last = self._now
        if self._current:
            self._counts[last % self.window] += self._current
            self._current = 0
        if now != last:
            steps = min(now - last, self.window)
            for second in range(last + 1, last + 1 + steps):
                slot = second % self.window
                self._counts[slot] = 0
                self._retries[slot] = 0
            self._now = now
        return now % self.window

    def record_request(self) -> None:
        """Count one first attempt (it earns ``ratio`` of a retry)."""
        if time.monotonic() >= self._now + 1:  # a new second: the ring moves on first
            self._advance()
        self._current += 1  # into the ring when it is next read or moves on

    @property
    def available(self) -> float:
        """Retries the budget allows now (may be fractional)."""
        self._advance()
        allowed = self.ratio * sum(self._counts) + self.min_per_second * self.window
        return allowed - sum(self._retries)

    def try_retry(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        slot = self._advance()
        allowed = self.ratio * sum(self._counts) + self.min_per_second * self.window
        if sum(self._retries) + 1 > allowed:
            return False
        self._retries[slot] += 1
        return True
