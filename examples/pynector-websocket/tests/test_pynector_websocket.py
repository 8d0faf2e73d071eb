"""pynector-websocket against real WebSocket servers on 127.0.0.1, on asyncio and trio."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest
from websocket_servers import TOKEN, Server

from pynector import Pynector
from pynector.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    ProtocolError,
    TimeoutError,
)
from pynector.registry import available_transports
from pynector_websocket import WebSocketTransport

pytestmark = pytest.mark.anyio


def test_the_installed_distribution_provides_the_websocket_transport() -> None:
    (info,) = [info for info in available_transports() if info.name == "websocket"]
    assert (info.distribution, info.status) == ("pynector-websocket", "ok")


async def test_text_bytes_and_json_requests_get_their_replies(ws_server: Server) -> None:
    async with Pynector(transport_type="websocket", url=ws_server.ws("/echo")) as client:
        assert await client.request("hello") == "hello"
        assert await client.request(b"abc") == b"cba"
    async with Pynector(transport_type="websocket", url=ws_server.ws("/echo"), json=True) as client:
        assert await client.request({"n": 1}) == {"echo": {"n": 1}}
        assert isinstance(client.transport, WebSocketTransport)


async def test_a_batch_shares_one_connection_and_every_caller_gets_its_own_reply(
    ws_server: Server,
) -> None:
    before = ws_server.handshakes["/batch"]
    async with Pynector(
        transport_type="websocket", url=ws_server.ws("/batch"), json=True
    ) as client:
        requests: list[tuple[dict[str, int], dict[str, Any]]] = [({"n": n}, {}) for n in range(20)]
        results = await client.batch_request(requests, max_concurrency=5)
    assert results == [{"echo": {"n": n}} for n in range(20)]
    assert ws_server.handshakes["/batch"] == before + 1


async def test_a_late_reply_never_reaches_the_next_request(ws_server: Server) -> None:
    before = ws_server.handshakes["/late"]
    async with Pynector(transport_type="websocket", url=ws_server.ws("/late")) as client:
        with pytest.raises(TimeoutError):
            await client.request("slow:0.5", timeout=0.1)
        assert await client.request("next") == "next"
    assert ws_server.handshakes["/late"] == before + 2  # the client reconnected


async def test_a_closed_websocket_is_a_retryable_error_and_a_retry_reconnects(
    ws_server: Server, anyio_backend: str
) -> None:
    message = f"close-once:{anyio_backend}"
    url = ws_server.ws("/closing")
    async with Pynector(transport_type="websocket", url=url, config={"retry_delay": 0}) as client:
        assert await client.request_with_retry(message, max_retries=1) == message
    async with Pynector(transport_type="websocket", url=url) as client:
        with pytest.raises(ConnectionError, match="1011") as caught:
            await client.request(f"close-once:{anyio_backend}-again")
    assert caught.value.retryable


async def test_pings_from_the_server_are_answered_while_waiting(
    ping_server: tuple[str, list[bytes]],
) -> None:
    url, pongs = ping_server
    async with Pynector(transport_type="websocket", url=url) as client:
        assert await client.request("anyone?") == "pong received"
    assert pongs == [b"are-you-there"]


async def test_a_refused_handshake_is_an_http_status_error_and_not_retried(
    ws_server: Server,
) -> None:
    before = ws_server.handshakes["/private"]
    client = Pynector(transport_type="websocket", url=ws_server.ws("/private"))
    try:
        with pytest.raises(AuthenticationError) as caught:
            await client.request_with_retry("hi", max_retries=3)
    finally:
        await client.aclose()
    assert caught.value.status_code == 403
    assert ws_server.handshakes["/private"] == before + 1


async def test_handshake_headers_are_sent_and_never_shown(ws_server: Server) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    transport = WebSocketTransport(ws_server.ws("/private"), headers=headers)
    async with Pynector(transport=transport) as client:
        assert await client.request("secret handshake") == "secret handshake"
    assert TOKEN not in repr(transport)
    assert "Authorization" in repr(transport)


async def test_the_server_chooses_a_subprotocol(ws_server: Server) -> None:
    transport = WebSocketTransport(ws_server.ws("/echo"), subprotocols=["rpc.v2", "rpc.v1"])
    async with Pynector(transport=transport) as client:
        assert await client.request("x") == "x"
        assert transport.subprotocol == "rpc.v2"


async def test_a_refused_connection_is_retryable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(ConnectionError) as caught:
        async with Pynector(transport_type="websocket", url=f"ws://127.0.0.1:{port}/"):
            pass  # connecting on entry fails
    assert caught.value.retryable


async def test_replies_over_the_size_limit_or_not_json_are_protocol_errors(
    ws_server: Server,
) -> None:
    url = ws_server.ws("/limits")
    async with Pynector(transport_type="websocket", url=url, max_message_size=1000) as client:
        with pytest.raises(ProtocolError, match="max_message_size"):
            await client.request("big")
        assert await client.request("small") == "small"
    async with Pynector(transport_type="websocket", url=url, json=True) as client:
        with pytest.raises(ProtocolError, match="not JSON"):
            await client.request("not-json")


async def test_values_that_cannot_be_sent_are_configuration_errors(ws_server: Server) -> None:
    async with Pynector(transport_type="websocket", url=ws_server.ws("/echo")) as client:
        with pytest.raises(ConfigurationError, match="json=True"):
            await client.request({"n": 1})
        with pytest.raises(ConfigurationError, match="per-request options"):
            await client.request("x", priority=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://example.com/"}, "scheme"),
        ({"url": "example.com"}, "WebSocket URL"),
        ({"url": "ws://h/", "connect_timeout": 0}, "connect_timeout"),
        ({"url": "ws://h/", "max_message_size": "1k"}, "max_message_size"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Pynector(transport_type="websocket", **options)


async def test_disconnect_is_safe_twice_and_a_closed_transport_refuses_to_send(
    ws_server: Server,
) -> None:
    transport = WebSocketTransport(ws_server.ws("/echo"))
    await transport.connect()
    assert transport.connected
    await transport.disconnect()
    await transport.disconnect()
    with pytest.raises(ConnectionError, match="not connected"):
        await transport.send("x")
    with anyio.fail_after(5):
        await transport.connect()
        await transport.send("again")
        assert [item async for item in transport.receive()] == ["again"]
        await transport.disconnect()
