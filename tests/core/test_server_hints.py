"""Server hints: the providers' rate-limit headers slow the client down before a 429.

A loopback server enforces a fixed window of ``limit`` requests per
``window`` seconds (from its first request, by its own clock), answers 429
without Retry-After past it, and announces what remains in OpenAI's or
Anthropic's headers.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector.call import Usage
from pynector.concurrency import RateLimiter, parse_reset, server_hint
from tests import _engines

from ._arrivals import LoopbackServer

# Every async test here runs on each (event loop, HTTP engine) pair.
backend_engine = _engines.backend_engine
anyio_backend = _engines.anyio_backend
engine = _engines.engine

pytestmark = pytest.mark.anyio


class WindowServer(LoopbackServer):
    """``limit`` requests per fixed ``window`` seconds, announced in rate-limit headers.

    Args:
        limit: Requests accepted per window (``None``: all, the headers still sent).
        window: The window's length in seconds.
        style: ``"openai"`` (durations), ``"anthropic"`` (RFC 3339 timestamps),
            ``"garbage"`` (unparseable values) or ``"plenty"`` (1000 remaining).
    """

    def __init__(self, limit: int | None, window: float, style: str = "openai") -> None:
        super().__init__()
        self.limit = limit
        self.window = window
        self.style = style
        self.refused = 0
        self._start: float | None = None

    def _headers(self, now: float, used: int) -> str:
        assert self._start is not None
        windows = math.floor((now - self._start) / self.window)
        reset = self._start + (windows + 1) * self.window - now
        remaining = max((self.limit or 1000) - used, 0)
        if self.style == "garbage":
            return (
                "x-ratelimit-remaining-requests: a few\r\n"
                "x-ratelimit-reset-requests: soon\r\n"
                "anthropic-ratelimit-requests-remaining: -1\r\n"
                "anthropic-ratelimit-requests-reset: 2026-13-45T99:00:00Z\r\n"
                "x-ratelimit-remaining-tokens: 0\r\n"
                "x-ratelimit-reset-tokens: 1fortnight\r\n"
            )
        if self.style == "plenty":
            return "x-ratelimit-remaining-requests: 1000\r\nx-ratelimit-reset-requests: 1s\r\n"
        if self.style == "anthropic":
            at = datetime.fromtimestamp(time.time() + reset, UTC).isoformat()
            return (
                f"anthropic-ratelimit-requests-remaining: {remaining}\r\n"
                f"anthropic-ratelimit-requests-reset: {at.replace('+00:00', 'Z')}\r\n"
            )
        return (
            f"x-ratelimit-remaining-requests: {remaining}\r\n"
            f"x-ratelimit-reset-requests: {reset * 1000:.0f}ms\r\n"
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            now = time.monotonic()
            if self._start is None:
                self._start = now
            self.arrivals.append(now)
            windows = math.floor((now - self._start) / self.window)
            begin = self._start + windows * self.window
            used = sum(1 for at in self.arrivals if at >= begin)
            if self.limit is not None and used > self.limit:
                self.refused += 1
                status, body = b"429 Too Many Requests", b'{"error": "rate limited"}'
            else:
                status, body = b"200 OK", b'{"ok": true}'
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: application/json\r\n"
                + self._headers(now, used).encode()
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()


async def _run(server: WindowServer, engine: str, n: int, config: dict[str, Any]) -> list[Any]:
    async with Pynector(
        transport_type="http", base_url=server.url, engine=engine, config=config
    ) as client:
        return await client.batch_request(
            [({"path": "/"}, {}) for _ in range(n)], max_concurrency=1, max_retries=0
        )


@pytest.mark.parametrize("style", ["openai", "anthropic"])
async def test_announced_remaining_requests_are_spread_so_no_429_comes(
    engine: str, style: str
) -> None:
    # 2 requests per 0.3 s, no rate_limit configured: without the hints the
    # third request of a window is refused.
    with WindowServer(limit=2, window=0.3, style=style) as server:
        results = await _run(server, engine, 6, {})
    assert server.refused == 0
    assert all(not isinstance(result, Exception) for result in results)
    # Six requests need three windows: the last starts in the third.
    assert server.arrivals[-1] - server.arrivals[0] >= 0.6
    assert server.arrivals[-1] - server.arrivals[0] < 3.0


async def test_hints_tighter_than_the_rate_limit_still_apply(engine: str) -> None:
    with WindowServer(limit=2, window=0.3) as server:
        results = await _run(server, engine, 6, {"rate_limit": "100/s"})
    assert server.refused == 0
    assert all(not isinstance(result, Exception) for result in results)


async def test_unparseable_hints_are_ignored(engine: str) -> None:
    with WindowServer(limit=None, window=60.0, style="garbage") as server:
        results = await _run(server, engine, 10, {})
    assert all(not isinstance(result, Exception) for result in results)
    # Read as hints, "0 tokens remaining" would have paused; the reset did not parse.
    assert server.arrivals[-1] - server.arrivals[0] < 2.0


async def test_hints_never_let_the_client_go_faster_than_rate_limit(engine: str) -> None:
    # The server announces plenty; the configured 10/s still paces the starts.
    with WindowServer(limit=None, window=1.0, style="plenty") as server:
        results = await _run(server, engine, 6, {"rate_limit": "10/s"})
    assert all(not isinstance(result, Exception) for result in results)
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert server.arrivals[-1] - server.arrivals[0] >= 5 * 0.1 * 0.9
    assert min(gaps) >= 0.1 * 0.3  # arrivals jitter; the schedule is 0.102 s apart


# -- the reader and the limiter on their own -----------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5", 0.5),
        (" 2s ", 2.0),
        ("2026-12-01T12:00:30Z", 30.0),
        ("2026-12-01T12:00:30.5+00:00", 30.5),
        ("2026-12-01T11:00:00Z", 0.0),  # a past reset: now
    ],
)
def test_reset_values_are_read(value: str, seconds: float) -> None:
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_reset(value, now) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["", "soon", "1x", "s", "1s2", "-1s", "nan", "inf", "2026-12-01T12:00:30", "9" * 80, "1e9"],
)
def test_bad_reset_values_are_none(value: str) -> None:
    assert parse_reset(value) is None


def test_the_strictest_hint_wins_and_tokens_count_in_calls_like_the_last() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "100",
        "x-ratelimit-reset-requests": "3s",
        "x-ratelimit-remaining-tokens": "1000",
        "x-ratelimit-reset-tokens": "10s",
    }
    assert server_hint(headers, Usage(400, 100)) == (2, 10.0)  # 1000 // 500 calls in 10 s
    assert server_hint(headers) == (100, 3.0)  # no usage: tokens left tell nothing
    assert server_hint({**headers, "x-ratelimit-remaining-tokens": "0"}) == (0, 10.0)
    soon = datetime.fromtimestamp(time.time() + 20, UTC).isoformat()
    anthropic = {
        "anthropic-ratelimit-requests-remaining": "50",
        "anthropic-ratelimit-requests-reset": soon,
        "anthropic-ratelimit-output-tokens-remaining": "10",
        "anthropic-ratelimit-output-tokens-reset": soon,
    }
    remaining, reset = server_hint(anthropic, Usage(5, 2)) or (0, 0.0)
    assert remaining == 5  # 10 output tokens left, 2 a call
    assert 15 < reset <= 20
    later = {**anthropic, "anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z"}
    assert server_hint(later) is None  # a reset beyond a day is no hint; tokens tell nothing
    assert server_hint({"x-ratelimit-remaining-requests": "2"}) is None  # no reset
    bad = {"x-ratelimit-remaining-requests": "2.5", "x-ratelimit-reset-requests": "1s"}
    assert server_hint(bad) is None
    assert server_hint({}) is None


async def test_a_hint_spreads_the_starts_until_its_reset() -> None:
    limiter = RateLimiter(None)
    limiter.hint(2, 0.4)  # 2 more in 0.4 s: now, then 0.2 s later (plus the 2% margin)
    started = anyio.current_time()
    times = []
    for _ in range(4):
        await limiter.acquire()
        times.append(anyio.current_time() - started)
    assert times[0] < 0.1
    assert times[1] - times[0] >= 0.2
    assert times[2] - times[1] >= 0.2
    # Past the reset the limiter is unlimited again.
    assert times[3] - times[2] < 0.1
    assert limiter.idle


async def test_none_remaining_pauses_until_the_reset() -> None:
    limiter = RateLimiter(10, 1.0)
    limiter.hint(0, 0.3)
    started = anyio.current_time()
    await limiter.acquire()
    first = anyio.current_time() - started
    await limiter.acquire()
    second = anyio.current_time() - started
    assert 0.3 <= first < 1.0
    # Paced at the configured 0.102 s after the pause, not at the hint (less up to the
    # limiter's 0.01 s of slack when the first start woke late: the schedule is kept).
    assert 0.09 <= second - first < 0.3


async def test_a_hint_looser_than_the_rate_limit_changes_nothing() -> None:
    limiter = RateLimiter(5, 1.0)
    for remaining, reset in [(100, 1.0), (-1, 1.0), (1, math.nan), (1, 0.0), (1, -2.0)]:
        limiter.hint(remaining, reset)
    started = anyio.current_time()
    for _ in range(3):
        await limiter.acquire()
    # Just the configured pace: 0.204 s apart, the first at once.
    assert 0.4 <= anyio.current_time() - started < 0.6
