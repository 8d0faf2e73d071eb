"""Server hints: the providers' rate-limit headers, read as "how many more starts before when".

OpenAI sends ``x-ratelimit-remaining-requests`` / ``-tokens`` with
``x-ratelimit-reset-requests`` / ``-tokens`` as durations (``"1s"``,
``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``); Anthropic sends
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining``
with ``-reset`` as RFC 3339 timestamps. A value that does not parse is
ignored: a hint can only slow the client down, never fail a call.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pynector.call import Usage

__all__ = ["parse_reset", "server_hint"]

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_MAX_RESET = 3600.0 * 24  # a reset further away than a day is not a pacing hint

# (remaining header, reset header, the usage field one call consumes of it)
_OPENAI = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", None),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "total"),
)
_ANTHROPIC = (
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", None),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset", "total"),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
        "input",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
        "output",
    ),
)
_HEADERS = _OPENAI + _ANTHROPIC
_REMAINING = frozenset(name for name, _, _ in _HEADERS)


def parse_reset(value: object, now: float | None = None) -> float | None:
    """Seconds until a rate-limit reset, or ``None`` when ``value`` is not one.

    Accepts a Go-style duration (``"1s"``, ``"6m0s"``, ``"20ms"``,
    ``"1h2m3.5s"``), a plain number of seconds (``"0.5"``) or an RFC 3339
    timestamp (``"2026-12-01T12:00:30Z"``, read against the wall clock; a
    past one is 0).

    Args:
        value: The header's value.
        now: The wall-clock time (``time.time()``) to read a timestamp against.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    seconds: float | None
    if "T" in text or "t" in text:
        from datetime import datetime

        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None  # no offset: not RFC 3339, and the clock it means is unknown
        try:
            seconds = moment.timestamp() - (time.time() if now is None else now)
        except (OverflowError, OSError, ValueError):
            return None
        seconds = max(seconds, 0.0)
    else:
        try:
            seconds = float(text)
        except ValueError:
            seconds = _duration(text)
    if seconds is None or not math.isfinite(seconds) or seconds < 0 or seconds > _MAX_RESET:
        return None
    return seconds


def _duration(text: str) -> float | None:
    total, end = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != end:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        end = match.end()
    return total if end == len(text) and end else None


def _count(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def server_hint(headers: Mapping[str, str], usage: Usage | None = None) -> tuple[int, float] | None:
    """The strictest hint in a reply's headers: ``(starts_remaining, reset_seconds)``.

    Requests count one a start. Tokens count in calls like the one that got
    these headers: ``remaining // used`` with ``used`` from ``usage`` (total,
    input or output tokens, to match the header); without usage only an
    exhausted token limit (0 remaining) counts. The strictest hint is the one
    with the longest time per remaining start.

    Args:
        headers: The reply's headers: a case-insensitive mapping whose names
            iterate lower-cased (pynector's and httpx's ``Headers``), or a
            mapping with lower-case keys.
        usage: The usage the transport reported for the attempt, if any.

    Returns:
        ``None`` when the headers hold no usable hint (missing or bad values).
    """
    if headers.keys().isdisjoint(_REMAINING):
        return None  # the usual reply: no rate-limit header, no value read
    get = headers.get
    best: tuple[int, float] | None = None
    worst = -1.0
    now: float | None = None
    for remaining_name, reset_name, unit in _HEADERS:
        remaining = _count(get(remaining_name))
        if remaining is None:
            continue
        if unit is not None:
            used = _used(usage, unit)
            if used:
                remaining //= used
            elif remaining:
                continue  # tokens left, and no telling how many a call takes
        if now is None:
            now = time.time()
        reset = parse_reset(get(reset_name), now)
        if reset is None:
            continue
        spacing = reset / max(remaining, 1)
        if spacing > worst:
            best, worst = (remaining, reset), spacing
    return best


def _used(usage: Usage | None, unit: str) -> int:
    if usage is None:
        return 0
    if unit == "input":
        return usage.input_tokens
    if unit == "output":
        return usage.output_tokens
    return usage.total_tokens
