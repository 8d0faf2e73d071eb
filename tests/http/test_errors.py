"""Status errors, Retry-After and the idempotency rule, against the control server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pynector.errors import ConnectionError, HTTPStatusError, RateLimitError, ServerError
from pynector_http import MAX_RETRY_AFTER, HTTPRequest, HTTPTransport, parse_retry_after

from ._control import ControlServer
from ._faults import refused_port

pytestmark = pytest.mark.anyio


def _http_date(delta: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("7", 7, 7),
        ("0", 0, 0),
        ("-5", 0, 0),
        ("2.5", 2.5, 2.5),
        ("99999999999", MAX_RETRY_AFTER, MAX_RETRY_AFTER),
        ("junk", None, None),
        ("", None, None),
        ("1e3", None, None),
    ],
)
async def test_retry_after_header_from_the_server_is_parsed_and_clamped(
    control: ControlServer, key: str, value: str, low: float | None, high: float | None, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(RateLimitError) as caught:
            await transport.request(
                {"path": "/flaky", "params": {"key": key, "status": 429, "retry_after": value}}
            )
    error = caught.value
    assert error.retryable is True
    if low is None:
        assert error.retry_after is None
    else:
        assert error.retry_after is not None
        assert high is not None
        assert low <= error.retry_after <= high


async def test_retry_after_as_an_http_date(control: ControlServer, key: str, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(ServerError) as future:
            await transport.request(
                {
                    "path": "/flaky",
                    "params": {"key": key, "retry_after": _http_date(timedelta(seconds=30))},
                }
            )
        with pytest.raises(ServerError) as past:
            await transport.request(
                {
                    "path": "/flaky",
                    "params": {
                        "key": key + "-past",
                        "retry_after": _http_date(timedelta(seconds=-30)),
                    },
                }
            )
    assert future.value.retry_after is not None
    assert 25 <= future.value.retry_after <= 31
    assert past.value.retry_after == 0
    assert "Retry-After" in str(future.value)


def test_parse_retry_after_edge_cases() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert parse_retry_after(None) is None
    assert parse_retry_after("  12  ") == 12
    assert parse_retry_after("+3") == 3
    assert parse_retry_after("Tue, 01 Jan 2030 00:01:00 GMT", now=now) == 60
    assert parse_retry_after("Tue, 01 Jan 2030 00:01:00 -0000", now=now) == 60
    assert parse_retry_after("Mon, 01 Jan 2035 00:00:00 GMT", now=now) == MAX_RETRY_AFTER
    assert parse_retry_after("Mon, 99 Foo 2020 00:00:00 GMT") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("inf") is None


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_non_idempotent_5xx_is_not_retryable_and_says_how_to_allow_it(
    control: ControlServer, key: str, method: str, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(ServerError) as caught:
            await transport.request(
                {"path": "/flaky", "method": method, "params": {"key": key}, "json": {}}
            )
    assert caught.value.retryable is False
    assert "Idempotency-Key" in str(caught.value)
    assert "idempotent=True" in str(caught.value)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
async def test_idempotent_methods_5xx_is_retryable(
    control: ControlServer, key: str, method: str, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(ServerError) as caught:
            await transport.request({"path": "/flaky", "method": method, "params": {"key": key}})
    assert caught.value.retryable is True


async def test_post_becomes_retryable_with_an_idempotency_key_or_the_option(
    control: ControlServer, key: str, engine: str
) -> None:
    flaky: HTTPRequest = {"path": "/flaky", "method": "POST", "params": {"key": key, "fail": 10}}
    async with HTTPTransport(
        engine=engine, base_url=control.url, headers={"Idempotency-Key": "default-key"}
    ) as with_default:
        with pytest.raises(ServerError) as by_default_header:
            await with_default.request(flaky)
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(ServerError) as by_header:
            await transport.request({**flaky, "headers": {"Idempotency-Key": "abc"}})
        with pytest.raises(ServerError) as by_option:
            await transport.request(flaky, idempotent=True)
        with pytest.raises(ServerError) as opted_out:
            await transport.request({**flaky, "method": "GET"}, idempotent=False)
    assert by_default_header.value.retryable is True
    assert by_header.value.retryable is True
    assert by_option.value.retryable is True
    assert opted_out.value.retryable is False


@pytest.mark.parametrize("status", [429, 408])
async def test_post_rejected_with_429_or_408_is_retryable(
    control: ControlServer, key: str, status: int, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(HTTPStatusError) as caught:
            await transport.request(
                {"path": "/flaky", "method": "POST", "params": {"key": key, "status": status}}
            )
    assert caught.value.status_code == status
    assert caught.value.retryable is True


async def test_connection_refused_is_retryable_even_for_post(engine: str) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    async with HTTPTransport(engine=engine, base_url=url) as transport:
        with pytest.raises(ConnectionError) as caught:
            await transport.request({"path": "/orders", "method": "POST", "json": {"n": 1}})
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, Exception)
    assert "could not connect" in str(caught.value)
    assert f"POST {url}/orders" in str(caught.value)
