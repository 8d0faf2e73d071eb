"""Third-party transports with only the four methods, over a real loopback socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream, TaskStatus

from pynector import Pynector
from pynector.errors import ConnectionError, TimeoutError
from pynector.transport.protocol import LifecycleMixin, Transport

pytestmark = pytest.mark.anyio


class LineServer:
    """A loopback TCP server: answers each line ``delay word`` with ``word`` after ``delay`` s."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def handle(self, stream: SocketStream) -> None:
        self.connections += 1
        buffered = b""
        async with stream:
            try:
                while True:
                    buffered += await stream.receive()
                    while b"\n" in buffered:
                        line, buffered = buffered.split(b"\n", 1)
                        delay, word = line.split(b" ", 1)
                        await anyio.sleep(float(delay))
                        await stream.send(word + b"\n")
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

    async def serve(self, *, task_status: TaskStatus[None]) -> None:
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
            task_status.started()
            await listener.serve(self.handle)


class LineTransport(Transport):
    """A minimal third-party transport: one TCP connection, one line per exchange."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stream: SocketStream | None = None
        self.connects = 0
        self.disconnects = 0
        self.attempts = 0

    async def connect(self) -> None:
        self.attempts += 1
        self.stream = await anyio.connect_tcp("127.0.0.1", self.port)
        self.connects += 1

    async def disconnect(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
            self.stream = None
            self.disconnects += 1

    async def send(self, data: Any, **options: Any) -> None:
        assert self.stream is not None
        await self.stream.send(f"{options.get('delay', 0)} {data}\n".encode())

    async def receive(self) -> AsyncIterator[bytes]:
        assert self.stream is not None
        line = b""
        while not line.endswith(b"\n"):
            line += await self.stream.receive(1)
        yield line[:-1]


@pytest.fixture
async def line_server() -> AsyncIterator[LineServer]:
    server = LineServer()
    async with anyio.create_task_group() as group:
        await group.start(server.serve)
        yield server
        group.cancel_scope.cancel()


async def test_seed_custom_transport_snippet_runs_as_written() -> None:
    # The seed's "Using a Custom Transport" example, verbatim.
    class MyCustomTransport(Transport):
        async def connect(self) -> None:
            # Implementation
            pass

        async def disconnect(self) -> None:
            # Implementation
            pass

        async def send(self, data, **options) -> None:  # type: ignore[no-untyped-def]
            # Implementation
            pass

        async def receive(self):  # type: ignore[no-untyped-def]
            # Implementation
            yield b"response data"

    # Use the custom transport
    custom_transport = MyCustomTransport()
    client = Pynector(transport=custom_transport)
    try:
        assert await client.request({"path": "/users", "method": "GET"}) == b"response data"
    finally:
        await client.aclose()


async def test_concurrent_callers_never_receive_each_others_replies(
    line_server: LineServer,
) -> None:
    transport = LineTransport(line_server.port)
    async with Pynector(transport=transport) as client:
        requests = [(f"word{n}", {"delay": 0.001 * (n % 4)}) for n in range(60)]
        results = await client.batch_request(requests, max_concurrency=10)
    assert results == [f"word{n}".encode() for n in range(60)]
    assert transport.connects == 1


async def test_a_timed_out_exchange_resets_the_channel_so_its_late_reply_is_dropped(
    line_server: LineServer,
) -> None:
    transport = LineTransport(line_server.port)
    async with Pynector(transport=transport) as client:
        with pytest.raises(TimeoutError):
            await client.request("late", timeout=0.2, delay=0.5)
        # Without a reset, this read would return the late b"late".
        assert await client.request("next", delay=0.6) == b"next"
    assert transport.connects == 2
    assert line_server.connections == 2


async def test_a_cancelled_exchange_resets_the_channel(line_server: LineServer) -> None:
    transport = LineTransport(line_server.port)
    async with Pynector(transport=transport) as client:
        with anyio.move_on_after(0.2):
            await client.request("cancelled", delay=0.5)
        assert await client.request("after", delay=0.6) == b"after"
    assert transport.connects == 2


async def test_a_stream_read_to_the_end_keeps_the_channel(line_server: LineServer) -> None:
    transport = LineTransport(line_server.port)
    async with Pynector(transport=transport) as client:
        async with client.stream("one") as items:
            assert [item async for item in items] == [b"one"]
        assert await client.request("two") == b"two"
    assert transport.connects == 1


async def test_refused_connection_is_a_retryable_transport_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens on this port any more
    transport = LineTransport(port)
    client = Pynector(transport=transport, config={"retry_delay": 0})
    try:
        with pytest.raises(ConnectionError) as caught:
            await client.request_with_retry("x", max_retries=2)
    finally:
        await client.aclose()
    assert transport.attempts == 3
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, OSError)


class ChunkTransport(Transport):
    """Replies with the chunks or items it was given."""

    def __init__(self) -> None:
        self.reply: list[Any] = []

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def send(self, data: Any, **options: Any) -> None:
        self.reply = list(data)

    async def receive(self) -> AsyncIterator[Any]:
        for item in self.reply:
            yield item


def replies() -> Iterator[tuple[list[Any], Any]]:
    yield [b"ab", b"cd", bytearray(b"e")], b"abcde"
    yield [{"id": 1}], {"id": 1}
    yield [], None
    yield [{"id": 1}, {"id": 2}], [{"id": 1}, {"id": 2}]


@pytest.mark.parametrize(("items", "expected"), list(replies()))
async def test_reply_items_are_joined_into_one_result(items: list[Any], expected: Any) -> None:
    async with Pynector(transport=ChunkTransport()) as client:
        assert await client.request(items) == expected


class CarefulTransport(ChunkTransport):
    """A transport that says which requests are safe to repeat after a timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def replayable(self, data: Any, **options: Any) -> bool:
        return bool(options.get("safe"))

    async def send(self, data: Any, **options: Any) -> None:
        self.sent += 1
        await anyio.Event().wait()


@pytest.mark.parametrize(("safe", "attempts"), [(False, 1), (True, 3)])
async def test_a_request_cut_short_by_the_deadline_is_retried_only_if_replayable(
    safe: bool, attempts: int
) -> None:
    transport = CarefulTransport()
    async with Pynector(transport=transport) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.request_with_retry(
                "x", max_retries=2, retry_delay=0, timeout=0.05, safe=safe
            )
    assert caught.value.retryable is safe
    assert transport.sent == attempts


class ManagedTransport(LifecycleMixin, ChunkTransport):
    """A transport that gets ``aclose()`` and ``async with`` from the mixin."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def connect(self) -> None:
        self.calls.append("connect")

    async def disconnect(self) -> None:
        self.calls.append("disconnect")


async def test_lifecycle_mixin_connects_on_enter_and_disconnects_on_exit_and_aclose() -> None:
    transport = ManagedTransport()
    with pytest.raises(LookupError):
        async with transport as entered:
            assert entered is transport
            assert transport.calls == ["connect"]
            raise LookupError  # the block's error propagates, after disconnect()
    assert transport.calls == ["connect", "disconnect"]
    await transport.aclose()
    assert transport.calls == ["connect", "disconnect", "disconnect"]
    async with Pynector(transport=transport) as client:
        assert await client.request([b"still ", b"a transport"]) == b"still a transport"
