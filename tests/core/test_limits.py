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


@pytest.mark.parametrize(("rate", "share"), [("10/s", 10), ("600/m", 10)])
async def test_no_one_second_window_of_arrivals_holds_more_than_the_share(
    rate: str, share: int, engine: str
) -> None:
    with ArrivalServer() as server:
        results = await _run(server, {"rate_limit": rate}, 25, engine)
    assert all(not isinstance(result, Exception) for result in results)
    assert len(server.arrivals) == 25
    assert most_in_any_window(server.arrivals, 1.0) <= share
    # Paced, not bunched: no half-second holds more than half the share (plus the edge).
    assert most_in_any_window(server.arrivals, 0.5) <= share // 2 + 1


async def test_strict_pacing_by_default_and_a_burst_when_configured(engine: str) -> None:
    with ArrivalServer() as server:
        await _run(server, {"rate_limit": "5/s"}, 3, engine)
    paced = sorted(server.arrivals)
    assert paced[1] - paced[0] >= 0.15  # spaced at 0.2 s from the first start on

    with ArrivalServer() as server:
        await _run(server, {"rate_limit": "5/s", "rate_burst": 4}, 6, engine)
    burst = sorted(server.arrivals)
    assert burst[3] - burst[0] < 0.15  # four at once
    assert burst[4] - burst[0] >= 0.15  # then paced again
    assert most_in_any_window(burst, 1.0) <= 4 + 5


async def test_retries_are_paced_with_everything_else(engine: str) -> None:
    # The first 6 arrivals are refused (no Retry-After wait): their retries take slots too.
    with ArrivalServer(refuse=6, retry_after=0) as server:
        results = await _run(server, {"rate_limit": "10/s"}, 12, engine, retries=3)
    assert all(not isinstance(result, Exception) for result in results)
    assert len(server.arrivals) == 18
    assert most_in_any_window(server.arrivals, 1.0) <= 10
    assert max(server.arrivals) - min(server.arrivals) >= 1.5


async def test_a_retry_after_pauses_every_request_of_the_client(engine: str) -> None:
    with ArrivalServer(refuse=1, retry_after=1) as server:
        results = await _run(server, {"rate_limit": "10/s"}, 5, engine, retries=1)
    assert all(not isinstance(result, Exception) for result in results)
    first, *rest = sorted(server.arrivals)
    assert server.refused == [first]
    assert all(at - first >= 0.9 for at in rest)


async def test_a_per_minute_limit_fits_a_server_enforcing_it_per_second(engine: str) -> None:
    # 1200/m against 20/s with one second of burst: all at once would be refused.
    with ArrivalServer(rate=20, burst=20) as server:
        results = await _run(server, {"rate_limit": "1200/m"}, 50, engine)
    assert server.refused == []
    assert all(not isinstance(result, Exception) for result in results)


async def test_without_pacing_the_same_limit_is_refused(engine: str) -> None:
    # The control: the same server refuses a minute's quota sent at once.
    with ArrivalServer(rate=20, burst=20) as server:
        results = await _run(server, {"rate_limit": "1200/m", "rate_burst": 1200}, 50, engine)
    assert len(server.refused) >= 20
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
    limiter = RateLimiter(20, 1.0)
    assert limiter.interval == pytest.approx(0.05 * 1.02)
    starts = []
    for _ in range(5):
        await limiter.acquire()
        starts.append(anyio.current_time())
    assert starts[-1] - starts[0] >= 4 * 0.05


async def test_after_a_pause_the_starts_are_paced_again_without_a_burst() -> None:
    limiter = RateLimiter(10, 1.0, burst=5)
    limiter.pause(0.2)
    starts = []
    for _ in range(3):
        await limiter.acquire()
        starts.append(anyio.current_time())
    assert starts[1] - starts[0] >= 0.09
    assert starts[2] - starts[1] >= 0.09
