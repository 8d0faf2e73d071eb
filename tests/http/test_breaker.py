"""Circuit breakers and the retry budget over HTTP, on every (event loop, engine) pair."""

from __future__ import annotations

import pytest

from pynector import Pynector
from pynector.errors import CircuitOpenError, ConnectionError, ServerError
from tests import _engines
from tests.core._outage import SETTINGS, OutageServer, calls

backend_engine = _engines.backend_engine
anyio_backend = _engines.anyio_backend
engine = _engines.engine

pytestmark = pytest.mark.anyio


async def test_dropped_connections_open_the_breaker_of_the_origin(engine: str) -> None:
    with OutageServer("close") as server:
        config = {"circuit_breaker": SETTINGS}
        async with Pynector(
            transport_type="http", base_url=server.url, engine=engine, config=config
        ) as client:
            outcomes = await calls(client, 4)
            # aiohttp resends once on a connection that broke when reused: up to 2 each.
            sent = server.counts["close"]
            assert 4 <= sent <= 8
            outcomes += await calls(client, 26)
    assert server.counts["close"] == sent  # nothing reached it once open
    assert all(isinstance(o, ConnectionError) for o in outcomes[:4])
    assert all(isinstance(o, CircuitOpenError) for o in outcomes[4:])


async def test_the_breaker_is_per_origin(engine: str) -> None:
    with OutageServer("503") as down, OutageServer("ok") as up:
        config = {"circuit_breaker": SETTINGS}
        async with Pynector(
            transport_type="http", base_url=down.url, engine=engine, config=config
        ) as client:
            await calls(client, 10)
            for _ in range(5):
                await client.request({"url": f"{up.url}/"})
    assert down.counts["503"] == 4
    assert up.counts["ok"] == 5  # another origin: its breaker is closed


async def test_a_stream_of_a_failing_server_is_refused_once_open(engine: str) -> None:
    with OutageServer("503") as server:
        config = {"circuit_breaker": SETTINGS}
        async with Pynector(
            transport_type="http", base_url=server.url, engine=engine, config=config
        ) as client:
            for _ in range(4):
                with pytest.raises(ServerError):
                    async with client.stream({"path": "/"}):
                        pass
            with pytest.raises(CircuitOpenError):
                async with client.stream({"path": "/"}):
                    pass
    assert server.counts["503"] == 4


async def test_the_retry_budget_caps_retries_of_server_errors(engine: str) -> None:
    config = {
        "retry_budget": {"ratio": 0.5, "min_per_second": 0, "window": 60},
        "retry_count": 4,
        "retry_delay": 0.0,
    }
    with OutageServer("503") as server:
        async with Pynector(
            transport_type="http", base_url=server.url, engine=engine, config=config
        ) as client:
            for _ in range(10):
                with pytest.raises(ServerError):
                    await client.request_with_retry({"path": "/"})
    assert server.counts["503"] == 10 + 5  # plain retries: 50
