"""Parsing the ``Retry-After`` header (RFC 9110, section 10.2.3)."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["MAX_RETRY_AFTER", "parse_retry_after"]

MAX_RETRY_AFTER = 86_400.0
"""The longest wait, in seconds, that a ``Retry-After`` value is reported as.

Larger values (and dates further away) are clamped to one day. The client has
its own, smaller bound (``config["retry_after_max"]``, 60 s by default) beyond
which it raises instead of sleeping.
"""

_SECONDS = re.compile(r"[+-]?\d+(?:\.\d+)?")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Turn a ``Retry-After`` header value into seconds to wait.

    Args:
        value: The header value: delay-seconds (``"120"``; decimals are
            accepted) or an HTTP date (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
        now: The current time as a POSIX timestamp, for dates (default: now).

    Returns:
        Seconds between ``0`` and :data:`MAX_RETRY_AFTER`: negative values and
        dates in the past give ``0``, larger values are clamped. ``None`` when
        the value is missing or is neither a number nor a date.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return MAX_RETRY_AFTER if seconds > 0 else None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
