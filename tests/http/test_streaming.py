"""Streaming, and the pool's health after cancellation churn."""

from __future__ import annotations

import random
from collections.abc import Mapping

import anyio
import pytest

from pynector import Pynector
from pynector.errors import NotFoundError
from pynector_http import HTTPRequest, HTTPTransport, Request, ResponseStream

from ._control import ControlServer
from ._faults import HangingListener

pytestmark = pytest.mark.anyio


async def test_stream_yields_the_body_in_chunks(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        async with transport.stream({"path": "/stream", "params": {"chunks": 40}}) as response:
            assert isinstance(response, ResponseStream)
            assert response.status_code == 200
            assert response.is_success
            assert response.headers["transfer-encoding"] == "chunked"
            assert isinstance(response.request, Request)
            assert response.url.endswith("/stream?chunks=40")
            chunks = [chunk async for chunk in response]
    assert b"".join(chunks) == b"".join(bytes([i]) * 1024 for i in range(40))
    assert len(chunks) > 1


async def test_a_compressed_body_is_streamed_decoded(control: ControlServer, engine: str) -> None:
    size = 1 << 20
    gzipped: HTTPRequest = {"path": "/big", "params": {"size": size, "gzip": "1"}}
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        async with transport.stream(gzipped) as body:
            assert body.headers["content-encoding"] == "gzip"
            chunks = [chunk async for chunk in body]
        # Left after one decoded chunk: the connection is released, the next request works.
        async with transport.stream(gzipped) as body:
            first = await body.__anext__()
        assert (await transport.request({"path": "/big", "params": {"size": 2}})).content == b"xx"
    assert b"".join(chunks) == bytes(size)
    assert 0 < len(first) <= size
    assert not first.strip(b"\0")


async def test_aread_reads_the_rest_of_a_stream(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        async with transport.stream({"path": "/stream", "params": {"chunks": 3}}) as response:
            first = await response.__anext__()
            rest = await response.aread()
            assert [chunk async for chunk in response] == []
    assert len(first + rest) == 3 * 1024


async def test_leaving_a_stream_early_releases_the_connection(
    control: ControlServer, key: str, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url, max_connections=1) as transport:
        for _ in range(3):
            # An endless body: reading it whole would never finish.
            async with transport.stream({"path": "/endless", "params": {"key": key}}) as body:
                received = 0
                async for chunk in body:
                    received += len(chunk)
                    if received >= 4096:
                        break
            with anyio.fail_after(5):
                healthy = await transport.request({"path": "/echo"})
            assert healthy.status_code == 200
    stats = control.key(key)
    assert control.wait_for(lambda: stats.disconnects == 3)


async def test_stream_with_an_error_status_raises_with_the_body_read(
    control: ControlServer, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url, max_connections=1) as transport:
        with pytest.raises(NotFoundError) as caught:
            async with transport.stream({"path": "/nowhere"}):
                pytest.fail("the block must not run for a 404")
        with anyio.fail_after(5):
            await transport.request({"path": "/echo"})
    assert caught.value.response.json() == {"error": "no route /nowhere"}


async def test_client_stream_yields_body_chunks(
    control: ControlServer, key: str, engine: str
) -> None:
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        async with client.stream({"path": "/stream", "params": {"chunks": 5}}) as chunks:
            status, length = chunks.status_code, chunks.headers.get("content-length")
            body = b"".join([chunk async for chunk in chunks])
        async with client.stream({"path": "/endless", "params": {"key": key}}) as chunks:
            async for _ in chunks:
                break
    assert len(body) == 5 * 1024
    assert status == 200
    assert length in (None, str(len(body)))
    assert control.wait_for(lambda: control.key(key).disconnects == 1)


async def test_client_stream_deadline_stops_an_endless_body(
    control: ControlServer, key: str, engine: str
) -> None:
    async with Pynector(transport_type="http", engine=engine, base_url=control.url) as client:
        with pytest.raises(TimeoutError):
            async with client.stream({"path": "/hold", "params": {"key": key}}, timeout=0.3) as c:
                async for _ in c:
                    pass
    assert control.wait_for(lambda: control.key(key).disconnects == 1)


async def test_pool_survives_hundreds_of_cancellations_mid_connect_and_mid_body(
    control: ControlServer, key: str, engine: str
) -> None:
    hanging = HangingListener()
    rng = random.Random(1234)
    transport = HTTPTransport(engine=engine, base_url=control.url, max_connections=4)
    try:
        async with transport:

            async def cancelled(path: str, params: Mapping[str, object], delay: float) -> None:
                with anyio.move_on_after(delay):
                    if path == "hang":
                        await transport.request({"url": f"{hanging.url}/x"})
                    elif path == "/hold":
                        async with transport.stream({"path": path, "params": params}) as body:
                            async for _ in body:
                                pass
                    else:
                        await transport.request({"path": path, "params": params})

            for _round in range(5):
                async with anyio.create_task_group() as group:
                    for _ in range(20):  # never completes the connect
                        group.start_soon(cancelled, "hang", {}, rng.uniform(0, 0.05))
                    for _ in range(20):  # cancelled mid-body (or earlier)
                        group.start_soon(cancelled, "/hold", {"key": key}, rng.uniform(0, 0.05))
                    for _ in range(20):  # some finish, some do not
                        group.start_soon(
                            cancelled, "/slow", {"seconds": 0.01}, rng.uniform(0, 0.03)
                        )
            with anyio.fail_after(10):
                results = []
                async with anyio.create_task_group() as group:

                    async def healthy() -> None:
                        results.append(await transport.request({"path": "/echo"}))

                    for _ in range(20):
                        group.start_soon(healthy)
            assert [r.status_code for r in results] == [200] * 20
            # The pool holds at most max_connections connections to the server.
            assert control.wait_for(lambda: control.open_connections <= 4)
    finally:
        hanging.stop()
    assert control.wait_for(lambda: control.open_connections == 0)
