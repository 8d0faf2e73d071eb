"""Paced rate limits as the server sees them: arrivals counted by a loopback server's clock."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector._config import load_config
from pynector.concurrency import RateLimiter
from pynector.errors import ConfigurationError, RateLimitError
from tests import _engines

from ._arrivals import ArrivalServer, most_in_any_window

# Every async test here runs on each (event loop, HTTP engine) pair.
backend_engine = _engines.backend_engine
anyio_backend = _engines.anyio_backend
engine = _engines.engine

pytestmark = pytest.mark.anyio


async def _run(
    server: ArrivalServer, config: dict[str, Any], n: int, engine: str, retries: int = 0
) -> list[Any]:
    async with Pynector(
        transport_type="http", base_url=server.url, engine=engine, config=config
    ) as client:
        return await client.batch_request(
            [({"path": "/"}, {}) for _ in range(n)],
            max_concurrency=n,
            max_retries=retries,
        )


async def test_no_one_second_window_of_arrivals_holds_more_than_the_share(engine: str) -> None:
    # 24 starts at 20/s span 1.17 s: the windows of the whole period are all seen.
    with ArrivalServer() as server:
        results = await _run(server, {"rate_limit": "20/s"}, 24, engine)
    assert all(not isinstance(result, Exception) for result in results)
    assert len(server.arrivals) == 24
    assert most_in_any_window(server.arrivals, 1.0) <= 20
    # Paced, not bunched: no half-second holds more than half the share (plus the edges).
    assert most_in_any_window(server.arrivals, 0.5) <= 10 + 2


async def test_strict_pacing_by_default_and_a_burst_when_configured(engine: str) -> None:
    with ArrivalServer() as server:
        await _run(server, {"rate_limit": "5/s"}, 2, engine)
    paced = sorted(server.arrivals)
    assert paced[1] - paced[0] >= 0.15  # spaced at 0.2 s from the first start on

    with ArrivalServer() as server:
        await _run(server, {"rate_limit": "5/s", "rate_burst": 4}, 5, engine)
    burst = sorted(server.arrivals)
    # Four at once (strictly paced, the fourth would start 0.6 s after the first).
    assert burst[3] - burst[0] < 0.4
    assert burst[4] - burst[0] >= 0.15  # then paced again


async def test_retries_are_paced_with_everything_else(engine: str) -> None:
    # The first 6 arrivals are refused (no Retry-After wait): their retries take slots too.
    with ArrivalServer(refuse=6, retry_after=0) as server:
        results = await _run(server, {"rate_limit": "20/s"}, 12, engine, retries=3)
    assert all(not isinstance(result, Exception) for result in results)
    assert len(server.arrivals) == 18
    # 18 starts paced at 0.051 s span 0.87 s; the 12 first attempts alone would span 0.56 s.
    assert max(server.arrivals) - min(server.arrivals) >= 0.75
    assert most_in_any_window(server.arrivals, 0.5) <= 10 + 2


async def test_a_retry_after_pauses_every_request_of_the_client(engine: str) -> None:
    # Unpaused, the other two would start 0.1 s and 0.2 s after the refused first one.
    with ArrivalServer(refuse=1, retry_after=0.5) as server:
        results = await _run(server, {"rate_limit": "10/s"}, 3, engine, retries=1)
    assert all(not isinstance(result, Exception) for result in results)
    first, *rest = sorted(server.arrivals)
    assert server.refused == [first]
    assert len(rest) == 3
    assert all(at - first >= 0.45 for at in rest)


async def test_a_per_minute_limit_fits_a_server_enforcing_it_in_short_slices(engine: str) -> None:
    # 2400/m against 40/s in quarter-second slices (a bucket 10 deep): all at once
    # would be refused.
    with ArrivalServer(rate=40, burst=10) as server:
        results = await _run(server, {"rate_limit": "2400/m"}, 45, engine)
    assert server.refused == []
    assert all(not isinstance(result, Exception) for result in results)
    assert most_in_any_window(server.arrivals, 1.0) <= 40  # the minute's share of a second


async def test_without_pacing_the_same_limit_is_refused(engine: str) -> None:
    # The control: the same server refuses a minute's quota sent at once.
    with ArrivalServer(rate=40, burst=10) as server:
        results = await _run(server, {"rate_limit": "2400/m", "rate_burst": 2400}, 45, engine)
    # 45 at once: the 10 of the bucket, plus 40 a second while they arrive.
    assert len(server.refused) >= 15
    assert any(isinstance(result, RateLimitError) for result in results)


def test_rate_burst_is_validated() -> None:
    with pytest.raises(ConfigurationError, match=r"config\['rate_burst'\]=0 is invalid"):
        Pynector(transport_type="http", config={"rate_burst": 0})
    with pytest.raises(ConfigurationError, match="PYNECTOR_RATE_BURST"):
        load_config({}, {"PYNECTOR_RATE_BURST": "many"})
    with pytest.raises(ConfigurationError, match="burst"):
        RateLimiter(10, burst=0)
    assert load_config({}, {"PYNECTOR_RATE_BURST": "5"}).rate_burst == 5
    assert load_config({"rate_burst": 3}, {}).rate_burst == 3


async def test_the_limiter_spaces_starts_by_its_interval() -> None:
    limiter = RateLimiter(40, 1.0)
    assert limiter.interval == pytest.approx(0.025 * 1.02)
    starts = []
    for _ in range(5):
        await limiter.acquire()
        starts.append(anyio.current_time())
    assert starts[-1] - starts[0] >= 4 * 0.025


async def test_after_a_pause_the_starts_are_paced_again_without_a_burst() -> None:
    limiter = RateLimiter(20, 1.0, burst=5)
    paused = anyio.current_time()
    limiter.pause(0.1)
    starts = []
    for _ in range(3):
        await limiter.acquire()
        starts.append(anyio.current_time())
    assert starts[0] - paused >= 0.1
    # 0.051 s apart on schedule: a late wake-up shortens the gap after it, not the pace.
    assert starts[1] - starts[0] >= 0.03
    assert starts[2] - starts[1] >= 0.03
