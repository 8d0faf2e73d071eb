"""Reading how long a server asked us to wait (``Retry-After``, RFC 9110 10.2.3).

Shared by every transport that sees HTTP headers (the HTTP and SDK transports,
third-party ones), so they all report ``retry_after`` the same way.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping

__all__ = [
    "MAX_RETRY_AFTER",
    "parse_retry_after",
    "retry_after_from_headers",
    "should_retry_from_headers",
]

MAX_RETRY_AFTER = 86_400.0
"""The longest wait, in seconds, that a server-requested delay is reported as.

Larger values (and dates further away) are clamped to one day. The client has
its own, smaller bound (``config["retry_after_max"]``, 120 s by default) beyond
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
        # Dates are rare (servers send seconds); email.utils costs ~15 ms to import.
        from datetime import UTC
        from email.utils import parsedate_to_datetime

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


def retry_after_from_headers(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait before retrying, from a response's headers.

    ``retry-after-ms`` (milliseconds; the OpenAI and Anthropic APIs send it)
    wins over ``retry-after`` (seconds or an HTTP date), as in their SDKs.

    Args:
        headers: The response headers, a case-insensitive mapping, or ``None``.
        now: The current POSIX time, for HTTP dates (default: now).

    Returns:
        As :func:`parse_retry_after`; ``None`` when neither header is usable.
    """
    if headers is None:
        return None
    millis = (headers.get("retry-after-ms") or "").strip()
    if _SECONDS.fullmatch(millis):
        return min(max(float(millis) / 1000.0, 0.0), MAX_RETRY_AFTER)
    return parse_retry_after(headers.get("retry-after"), now=now)


def should_retry_from_headers(headers: Mapping[str, str] | None) -> bool | None:
    """The server's own word on retrying, from its ``x-should-retry`` header.

    The OpenAI and Anthropic APIs send it, and their SDKs obey it before any
    rule of their own: ``true`` makes a failure retryable whatever its status,
    ``false`` makes it final.

    Args:
        headers: The response headers, a case-insensitive mapping, or ``None``.

    Returns:
        ``True`` or ``False`` for the header's ``true`` or ``false`` (any case,
        spaces ignored); ``None`` when it is absent or says anything else.
    """
    if headers is None:
        return None
    value = (headers.get("x-should-retry") or "").strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None
