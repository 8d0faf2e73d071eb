"""A histogram of latencies with fixed memory and about 1 % relative error.

Buckets grow geometrically by 2 % from 1 us to about 6 hours (1,200 integers),
so a quantile read from them is within 1 % of the exact one (the sample it
names lies in a bucket whose geometric middle is returned), whatever the
spread: a 5 % change in latency moves p50 and p95 by about 5 %. The smallest
and largest samples are kept exactly and bound every estimate.
"""

from __future__ import annotations

import math

__all__ = ["Latencies"]


class Latencies:
    """Counts of samples (seconds) in log-spaced buckets; quantiles within ~1 %.

    Attributes:
        count: How many samples were added.
        low: The smallest sample (``math.inf`` before the first).
        high: The largest sample (``0.0`` before the first).
    """

    __slots__ = ("_counts", "count", "high", "low")

    BASE = 1e-6
    """The lower edge of the first bucket, in seconds; smaller samples count there."""
    GROWTH = 1.02
    """How much wider each bucket is than the one before it."""
    BUCKETS = 1200
    """How many buckets: up to ``BASE * GROWTH ** BUCKETS`` (about 6 hours)."""

    _LOG_GROWTH = math.log(GROWTH)

    def __init__(self) -> None:
        self._counts = [0] * self.BUCKETS
        self.count = 0
        self.low = math.inf
        self.high = 0.0

    def add(self, seconds: float) -> None:
        """Count one sample."""
        if seconds > self.BASE:
            index = min(int(math.log(seconds / self.BASE) / self._LOG_GROWTH), self.BUCKETS - 1)
        else:
            index = 0
        self._counts[index] += 1
        self.count += 1
        if seconds < self.low:
            self.low = seconds
        if seconds > self.high:
            self.high = seconds

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 to 1) by nearest rank, or ``None`` with no samples.

        The exact answer is the ``ceil(q * count)``-th smallest sample; the
        estimate is the middle of its bucket, kept between the smallest and
        the largest sample (which are exact).
        """
        if not self.count:
            return None
        rank = max(math.ceil(q * self.count), 1)
        if rank == 1:
            return self.low
        if rank >= self.count:
            return self.high
        seen = 0
        for index, count in enumerate(self._counts):
            seen += count
            if seen >= rank:
                middle = self.BASE * math.exp((index + 0.5) * self._LOG_GROWTH)
                return min(max(middle, self.low), self.high)
        return self.high  # pragma: no cover - the counts always add up to count
