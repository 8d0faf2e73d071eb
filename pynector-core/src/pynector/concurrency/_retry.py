"""The retry policy: which errors to retry, and how long to wait before each retry.

Bounded attempts; exponential backoff with full jitter and a cap; a wait chosen
by the server (``retry_after``, from Retry-After) replaces the backoff within a
bound; a wait that exceeds the bound or the caller's own deadline is not slept.
The policy reads only ``retryable`` and ``retry_after`` of an error: it knows
nothing about HTTP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pynector.errors import ConfigurationError

__all__ = ["RetryDecision", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt.

    Attributes:
        delay: Seconds to wait before the next attempt.
        reason: ``"retry-after"`` when the server chose the wait, else ``"backoff"``.
    """

    delay: float
    reason: Literal["retry-after", "backoff"]


def _check(name: str, value: float, *, minimum: float, whole: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name}={value!r} is invalid: it must be a number")
    if whole and not isinstance(value, int):
        raise ConfigurationError(f"{name}={value!r} is invalid: it must be a whole number")
    if not math.isfinite(value) or value < minimum:
        raise ConfigurationError(
            f"{name}={value!r} is invalid: it must be a finite number >= {minimum:g}"
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry and how long to wait in between.

    Args:
        max_retries: Retries after the first attempt (``0`` = one attempt only).
        base_delay: The backoff before the first retry, doubled for each further
            one. ``0`` disables waiting between retries (handy in tests).
        max_delay: The cap on any backoff wait.
        max_retry_after: The longest server-requested wait that is honoured; a
            server asking for longer gets its error raised at once instead.
        jitter: Full jitter (a uniform draw in ``[0, backoff]``) when true.

    Raises:
        ConfigurationError: If a value is negative, not finite or of the wrong type.
    """

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    jitter: bool = True

    def __post_init__(self) -> None:
        _check("max_retries", self.max_retries, minimum=0, whole=True)
        _check("retry_delay", self.base_delay, minimum=0)
        _check("retry_max_delay", self.max_delay, minimum=0)
        _check("retry_after_max", self.max_retry_after, minimum=0)

    def backoff(self, attempt: int) -> float:
        """The backoff wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 64))
        if not self.jitter:
            return ceiling
        import random  # only on the retry path: keeps ``import pynector`` light

        return random.uniform(0.0, ceiling)

    def decide(
        self, attempt: int, error: BaseException, time_left: float = math.inf
    ) -> RetryDecision | None:
        """Decide whether and when to retry after ``attempt`` failed with ``error``.

        Args:
            attempt: The attempt that just failed (1-based).
            error: What it raised.
            time_left: Seconds before the caller's own deadline.

        Returns:
            The wait before the next attempt, or ``None`` when the error must be
            raised now: it is not retryable, the attempts are used up, the
            server asked for a wait beyond ``max_retry_after``, or the wait
            would end past the caller's deadline.
        """
        if attempt > self.max_retries or not getattr(error, "retryable", False):
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            decision = RetryDecision(max(0.0, float(retry_after)), "retry-after")
        else:
            decision = RetryDecision(self.backoff(attempt), "backoff")
        if decision.delay >= time_left:
            return None
        return decision
