"""Limits on what a server's reply may make the client hold: the body's size and the head's.

A hostile or broken server must not make ``request()`` buffer without bound: a
small gzip reply that expands enormously and a body that never ends both fail
as soon as they pass ``max_response_size``, with the connection closed and the
pool still serving the next request. Reply heads have the same limit on both
engines. Everything is checked against real loopback servers.
"""

from __future__ import annotations

import time

import anyio
import pytest

from pynector import Pynector
from pynector.errors import ConfigurationError, ProtocolError, ResponseTooLargeError
from pynector_http import HTTPTransport

from ._control import ControlServer

pytestmark = pytest.mark.anyio

LIMIT = 1024 * 1024  # 1 MiB: lowered from the default (100 MiB) to keep the tests fast
BOMB = 200_000_000  # decompressed bytes; about 200 KB on the wire


async def _healthy_after(transport: HTTPTransport, control: ControlServer, before: int) -> None:
    """The next request works, on a new connection: the failed one was closed, not pooled."""
    response = await transport.request({"path": "/echo"})
    assert response.status_code == 200
    assert control.connections_opened == before + 1


@pytest.mark.parametrize("gzip", ["1", "0"], ids=["gzip-bomb", "plain"])
async def test_a_body_over_max_response_size_fails_fast_and_the_pool_stays_healthy(
    control: ControlServer, engine: str, gzip: str
) -> None:
    size = BOMB if gzip == "1" else 8 * LIMIT
    async with HTTPTransport(
        base_url=control.url, engine=engine, max_response_size=LIMIT
    ) as transport:
        await transport.request({"path": "/echo"})  # leaves one idle pooled connection
        before = control.connections_opened
        started = time.monotonic()
        with anyio.fail_after(10), pytest.raises(ResponseTooLargeError) as caught:
            await transport.request({"path": "/big", "params": {"size": size, "gzip": gzip}})
        took = time.monotonic() - started
        await _healthy_after(transport, control, before)
    error = caught.value
    assert error.retryable is False
    assert error.limit == LIMIT
    assert f"max_response_size={LIMIT}" in str(error)
    assert "config={'max_response_size': ...}" in str(error)
    assert "None for no limit" in str(error)
    assert took < 5.0  # decoding all 200 MB would take longer; generous bound


async def test_an_endless_body_fails_at_the_limit_and_its_connection_is_closed(
    control: ControlServer, engine: str, key: str
) -> None:
    async with HTTPTransport(
        base_url=control.url, engine=engine, max_response_size=64 * 1024
    ) as transport:
        await transport.request({"path": "/echo"})
        before = control.connections_opened
        with anyio.fail_after(8), pytest.raises(ResponseTooLargeError):
            await transport.request({"path": "/endless", "params": {"key": key}})
        # The server sees the client hang up (it writes until then).
        assert control.wait_for(lambda: control.key(key).disconnects == 1)
        await _healthy_after(transport, control, before)


@pytest.mark.parametrize("gzip", ["1", "0"], ids=["gzip", "plain"])
async def test_a_body_at_the_limit_is_read_whole(
    control: ControlServer, engine: str, gzip: str
) -> None:
    before = control.connections_opened
    async with HTTPTransport(
        base_url=control.url, engine=engine, max_response_size=LIMIT
    ) as transport:
        response = await transport.request(
            {"path": "/big", "params": {"size": LIMIT, "gzip": gzip}}
        )
        again = await transport.request({"path": "/big", "params": {"size": 10, "gzip": gzip}})
    assert len(response.content) == LIMIT
    assert again.content == (bytes(10) if gzip == "1" else b"x" * 10)
    assert control.connections_opened == before + 1  # read to the end: back to the pool


async def test_max_response_size_none_disables_the_limit(
    control: ControlServer, engine: str
) -> None:
    async with HTTPTransport(
        base_url=control.url, engine=engine, max_response_size=None
    ) as transport:
        response = await transport.request(
            {"path": "/big", "params": {"size": 4 * LIMIT, "gzip": "1"}}
        )
    assert len(response.content) == 4 * LIMIT


async def test_stream_is_not_limited(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(
        base_url=control.url, engine=engine, max_response_size=1024
    ) as transport:
        async with transport.stream({"path": "/big", "params": {"size": LIMIT}}) as body:
            data = await body.aread()
    assert len(data) == LIMIT


async def test_the_client_passes_config_max_response_size_to_the_transport(
    control: ControlServer, engine: str
) -> None:
    async with Pynector(
        transport_type="http",
        base_url=control.url,
        engine=engine,
        config={"max_response_size": LIMIT},
    ) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.request_with_retry(
                {"path": "/big", "params": {"size": BOMB, "gzip": "1"}}, retry_delay=0.0
            )
        assert client.transport._max_response_size == LIMIT


def test_the_default_limit_is_100_mib() -> None:
    assert HTTPTransport()._max_response_size == 100 * 1024 * 1024
    assert Pynector(transport_type="http").transport._max_response_size == 104857600


@pytest.mark.parametrize("value", [0, -1, 1.5, "1MB", True])
def test_a_bad_max_response_size_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError, match="max_response_size="):
        HTTPTransport(max_response_size=value)  # type: ignore[arg-type]


# -- reply heads ------------------------------------------------------------------


async def test_a_12_kib_reply_header_is_accepted(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        response = await transport.request(
            {"path": "/headers", "params": {"size": 12 * 1024, "count": 1}}
        )
    assert len(response.headers["x-big-0"]) == 12 * 1024


@pytest.mark.parametrize(
    ("size", "count"),
    [(70 * 1024, 1), (8 * 1024, 9), (200 * 1024, 1)],
    ids=["one-70-kib-line", "nine-8-kib-lines", "one-200-kib-line"],
)
async def test_reply_headers_over_64_kib_are_a_protocol_error_on_both_engines(
    control: ControlServer, engine: str, size: int, count: int
) -> None:
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        with pytest.raises(ProtocolError) as caught:
            await transport.request({"path": "/headers", "params": {"size": size, "count": count}})
        assert caught.value.retryable is False
        response = await transport.request({"path": "/echo"})  # the pool still serves
    assert response.status_code == 200


async def test_reply_headers_just_under_64_kib_are_accepted(
    control: ControlServer, engine: str
) -> None:
    # Seven lines of 8 KiB plus the server's own: under 64 KiB in all.
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        response = await transport.request(
            {"path": "/headers", "params": {"size": 8 * 1024, "count": 7}}
        )
    assert len(response.headers["x-big-6"]) == 8 * 1024
