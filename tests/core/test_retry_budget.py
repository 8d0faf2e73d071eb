"""The retry budget as the server sees it: during an outage, retries are capped."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector._config import load_config
from pynector.concurrency import RetryBudget
from pynector.errors import ConfigurationError, PynectorError, ServerError, TransportError

from ._outage import OutageServer


def test_the_budget_is_on_by_default_and_configurable() -> None:
    assert load_config({}).retry_budget == (0.2, 3.0, 10)
    assert load_config({"retry_budget": True}).retry_budget == (0.2, 3.0, 10)
    assert load_config({"retry_budget": False}).retry_budget is None
    assert load_config({"retry_budget": {"ratio": 0.5}}).retry_budget == (0.5, 3.0, 10)
    env = {"PYNECTOR_RETRY_BUDGET": '{"min_per_second": 0, "window": 5}'}
    assert load_config({}, env).retry_budget == (0.2, 0.0, 5)
    assert load_config({}, {"PYNECTOR_RETRY_BUDGET": "off"}).retry_budget is None


@pytest.mark.parametrize(
    "value",
    [{"ratio": -1}, {"window": 0}, {"window": 1.5}, {"min_per_second": "x"}, {"rato": 1}, 3],
)
def test_bad_settings_are_a_configuration_error_naming_the_key(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="retry_budget"):
        load_config({"retry_budget": value})


def test_errors_are_not_marked_unless_a_retry_was_refused() -> None:
    assert PynectorError().budget_exhausted is False
    assert TransportError("x").budget_exhausted is False


def test_a_client_keeps_its_budget_where_hedges_can_spend_it_too() -> None:
    client = Pynector(transport_type="http", base_url="http://127.0.0.1:9")
    assert isinstance(client._retry_budget, RetryBudget)
    off = Pynector(
        transport_type="http", base_url="http://127.0.0.1:9", config={"retry_budget": False}
    )
    assert off._retry_budget is None


# Floor 0: retries are only the ratio's share of first attempts (no time-dependent floor).
TIGHT = {"ratio": 0.2, "min_per_second": 0, "window": 60}


@pytest.mark.anyio
async def test_retries_during_an_outage_are_capped_by_the_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {"retry_budget": TIGHT, "retry_count": 5, "retry_delay": 0.0}
    errors: list[PynectorError] = []
    with OutageServer("503") as server:
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            with caplog.at_level(logging.WARNING, logger="pynector.retry"), anyio.fail_after(20):
                for _ in range(50):
                    try:
                        await client.request_with_retry({"path": "/"})
                    except ServerError as exc:
                        errors.append(exc)
    # 50 first attempts earn 10 retries; plain retries would have sent 250.
    assert server.counts["503"] == 50 + 10
    assert len(errors) == 50
    assert sum(error.budget_exhausted for error in errors) >= 40
    lines = [r for r in caplog.records if r.name == "pynector.retry"]
    assert 1 <= len(lines) <= 2  # rate-limited: not one line per refused retry
    assert "retry budget" in lines[0].getMessage()


@pytest.mark.anyio
async def test_batch_retries_spend_the_same_budget() -> None:
    config = {"retry_budget": TIGHT}
    with OutageServer("503") as server:
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            with anyio.fail_after(20):
                results = await client.batch_request(
                    [({"path": "/"}, {}) for _ in range(40)],
                    max_concurrency=8,
                    max_retries=5,
                    retry_delay=0.0,
                )
    assert server.counts["503"] == 40 + 8
    assert all(isinstance(result, ServerError) for result in results)
    assert sum(getattr(result, "budget_exhausted", False) for result in results) >= 32


@pytest.mark.anyio
async def test_without_a_budget_every_retry_is_made() -> None:
    config = {"retry_budget": False, "retry_count": 3, "retry_delay": 0.0}
    with OutageServer("503") as server:
        async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
            for _ in range(5):
                with pytest.raises(ServerError) as caught:
                    await client.request_with_retry({"path": "/"})
                assert not caught.value.budget_exhausted
    assert server.counts["503"] == 5 * 4


@pytest.mark.anyio
async def test_a_healthy_server_sees_no_difference() -> None:
    with OutageServer("ok") as server:
        async with Pynector(transport_type="http", base_url=server.url) as client:
            for _ in range(20):
                await client.request_with_retry({"path": "/"})
    assert server.counts["ok"] == 20
