"""Socket-level faults: the right error class and retryable flag, no hang, no leak.

Each test uses a pool of one connection and, after the fault, sends a healthy
request through the same transport: a connection leaked by the fault would
leave the pool empty and that request would time out. The fault server also
checks from its side that the client closed every broken connection.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from pynector import Pynector
from pynector.errors import ConnectionError, ProtocolError, TimeoutError, TransportError
from pynector_http import HTTPTransport

from ._faults import FaultServer, HangingListener, refused_port

pytestmark = pytest.mark.anyio

SHORT = {"connect": 0.5, "read": 0.3, "write": 1.0, "pool": 1.0}


@asynccontextmanager
async def one_connection(faults: FaultServer, engine: str) -> AsyncIterator[HTTPTransport]:
    """A transport with a one-connection pool that must still work after the fault."""
    async with HTTPTransport(
        engine=engine, base_url=faults.url, timeout=SHORT, max_connections=1
    ) as transport:
        yield transport
        with anyio.fail_after(5):
            healthy = await transport.request({"path": "/ok"})
        assert healthy.content == b"ok"


def closed_by_client(faults: FaultServer) -> bool:
    """Wait until the server has no open connection left but the pooled healthy one."""
    return faults.wait_for(lambda: faults.open_connections <= 1)


async def fault(
    faults: FaultServer, engine: str, path: str, error: type[Exception], method: str = "GET"
) -> Exception:
    async with one_connection(faults, engine) as transport:
        with anyio.fail_after(5), pytest.raises(error) as caught:
            await transport.request({"path": path, "method": method})
    assert faults.wait_for(lambda: faults.open_connections == 0)
    return caught.value


async def stream_fault(
    faults: FaultServer, engine: str, path: str, error: type[Exception]
) -> tuple[Exception, int]:
    """Open a stream of ``path`` and read it to the end; the error and the chunks before it."""
    chunks = 0
    async with one_connection(faults, engine) as transport:
        with anyio.fail_after(5), pytest.raises(error) as caught:
            async with transport.stream({"path": path}) as body:
                async for _ in body:
                    chunks += 1
    assert faults.wait_for(lambda: faults.open_connections == 0)
    return caught.value, chunks


async def test_connection_refused(engine: str) -> None:
    async with HTTPTransport(
        engine=engine, base_url=f"http://127.0.0.1:{refused_port()}"
    ) as transport:
        with anyio.fail_after(5), pytest.raises(ConnectionError) as caught:
            await transport.request({"path": "/x"})
    assert caught.value.retryable is True


async def test_connect_hang_times_out_and_is_retryable_even_for_post(engine: str) -> None:
    listener = HangingListener()
    try:
        async with HTTPTransport(engine=engine, base_url=listener.url, timeout=SHORT) as transport:
            start = anyio.current_time()
            with anyio.fail_after(5), pytest.raises(TimeoutError) as caught:
                await transport.request({"path": "/x", "method": "POST", "json": {}})
            elapsed = anyio.current_time() - start
    finally:
        listener.stop()
    assert caught.value.retryable is True
    assert isinstance(caught.value, builtins.TimeoutError)
    assert "connecting timed out" in str(caught.value)
    assert 0.4 <= elapsed < 4


async def test_slow_headers_time_out_retryable_for_get(faults: FaultServer, engine: str) -> None:
    error = await fault(faults, engine, "/slow-headers", TimeoutError)
    assert error.retryable is True  # type: ignore[attr-defined]
    assert "waiting for the reply" in str(error)


async def test_slow_headers_time_out_not_retryable_for_post(
    faults: FaultServer, engine: str
) -> None:
    error = await fault(faults, engine, "/slow-headers", TimeoutError, method="POST")
    assert error.retryable is False  # type: ignore[attr-defined]
    assert "Idempotency-Key" in str(error)


async def test_stalled_body_times_out(faults: FaultServer, engine: str) -> None:
    error = await fault(faults, engine, "/stall-body", TimeoutError)
    assert error.retryable is True  # type: ignore[attr-defined]


async def test_trickled_body_is_stopped_by_the_clients_total_deadline(
    faults: FaultServer, engine: str
) -> None:
    # One byte every 20 ms never trips the 0.3 s read timeout: only a total
    # deadline ends it.
    async with Pynector(
        transport_type="http",
        engine=engine,
        base_url=faults.url,
        timeout=SHORT,
        config={"max_connections": 1},
    ) as client:
        start = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(TimeoutError) as caught:
            await client.request({"path": "/trickle"}, timeout=0.6)
        elapsed = anyio.current_time() - start
        assert faults.wait_for(lambda: faults.open_connections == 0)
        with anyio.fail_after(5):
            assert (await client.request({"path": "/ok"})).content == b"ok"
    assert caught.value.retryable is True
    assert 0.5 <= elapsed < 4


async def test_trickled_body_cancelled_by_a_caller_scope_releases_the_connection(
    faults: FaultServer, engine: str
) -> None:
    async with one_connection(faults, engine) as transport:
        with anyio.move_on_after(0.3) as scope:
            await transport.request({"path": "/trickle"})
        assert scope.cancelled_caught
        assert closed_by_client(faults)
    assert faults.wait_for(lambda: faults.open_connections == 0)


async def test_reset_mid_body_is_a_retryable_connection_error(
    faults: FaultServer, engine: str
) -> None:
    error = await fault(faults, engine, "/reset-mid-body", ConnectionError)
    assert error.retryable is True  # type: ignore[attr-defined]
    assert "connection broke" in str(error)


async def test_close_without_response(faults: FaultServer, engine: str) -> None:
    error = await fault(faults, engine, "/close-without-response", ConnectionError)
    assert error.retryable is True  # type: ignore[attr-defined]
    post = await fault(faults, engine, "/close-without-response", ConnectionError, method="POST")
    assert post.retryable is False  # type: ignore[attr-defined]


async def test_truncated_body(faults: FaultServer, engine: str) -> None:
    error = await fault(faults, engine, "/truncated", ConnectionError)
    assert error.retryable is True  # type: ignore[attr-defined]
    assert "connection broke" in str(error)


async def test_malformed_status_line_is_a_protocol_error(faults: FaultServer, engine: str) -> None:
    error = await fault(faults, engine, "/malformed-status", ProtocolError)
    assert error.retryable is False  # type: ignore[attr-defined]
    assert "invalid HTTP reply" in str(error)


async def test_huge_headers_are_a_protocol_error(faults: FaultServer, engine: str) -> None:
    error = await fault(faults, engine, "/huge-headers", ProtocolError)
    assert error.retryable is False  # type: ignore[attr-defined]


async def test_redirect_loop_gives_up_after_max_redirects(faults: FaultServer, engine: str) -> None:
    before = len(faults.requests)
    async with HTTPTransport(
        engine=engine, base_url=faults.url, timeout=SHORT, follow_redirects=True, max_redirects=5
    ) as transport:
        with anyio.fail_after(5), pytest.raises(ProtocolError) as caught:
            await transport.request({"path": "/redirect-loop"})
    assert caught.value.retryable is False
    assert "more than 5 redirects" in str(caught.value)
    assert faults.requests[before:] == ["/redirect-loop"] * 6


async def test_keep_alive_connection_closed_while_idle_is_replaced(
    faults: FaultServer, engine: str
) -> None:
    async with one_connection(faults, engine) as transport:
        first = await transport.request({"path": "/idle-close"})
        # Wait for the server to have dropped the idle pooled connection.
        assert faults.wait_for(lambda: faults.open_connections == 0)
        connections = faults.connections
        second = await transport.request({"path": "/idle-close", "method": "POST"})
        assert faults.connections == connections + 1
        assert faults.wait_for(lambda: faults.open_connections == 0)
    assert first.content == second.content == b"ok"


async def test_every_fault_is_a_transport_error_with_its_cause(
    faults: FaultServer, engine: str
) -> None:
    for path in ("/truncated", "/malformed-status", "/reset-mid-body"):
        error = await fault(faults, engine, path, TransportError)
        assert error.__cause__ is not None
        assert type(error.__cause__).__module__.startswith(engine)


@pytest.mark.parametrize(
    ("path", "error", "text"),
    [
        ("/truncated", ConnectionError, "connection broke"),
        ("/reset-mid-body", ConnectionError, "connection broke"),
        ("/bad-gzip", ProtocolError, "could not be decoded"),
    ],
)
async def test_a_body_failing_while_streamed_raises_the_same_error_as_request(
    faults: FaultServer, engine: str, path: str, error: type[TransportError], text: str
) -> None:
    streamed, _ = await stream_fault(faults, engine, path, error)
    requested = await fault(faults, engine, path, error)
    assert text in str(streamed)
    assert streamed.retryable is requested.retryable  # type: ignore[attr-defined]
    assert type(streamed.__cause__).__module__.startswith(engine)


@pytest.mark.parametrize("path", ["/malformed-status", "/huge-headers"])
async def test_a_reply_head_failing_fails_opening_the_stream(
    faults: FaultServer, engine: str, path: str
) -> None:
    error, chunks = await stream_fault(faults, engine, path, ProtocolError)
    assert chunks == 0
    assert error.retryable is False  # type: ignore[attr-defined]
    assert "invalid HTTP reply" in str(error)


async def test_streaming_from_a_refused_port_is_a_retryable_connection_error(
    engine: str,
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=f"http://127.0.0.1:{refused_port()}"
    ) as transport:
        with anyio.fail_after(5), pytest.raises(ConnectionError) as caught:
            async with transport.stream({"path": "/x"}):
                pass
    assert caught.value.retryable is True
    assert type(caught.value.__cause__).__module__.startswith(engine)
