"""A loopback HTTP/1.1 server that records when each request arrives, by its own clock.

It runs an asyncio loop in a thread of the test process and timestamps a
request when its head has been read (what a provider's limiter counts). It
can enforce a limit as providers do, a token bucket (``rate`` per second,
``burst`` deep) answering 429 when empty, and it can refuse the first
``refuse`` requests with 429 and a ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from types import TracebackType
from typing import Self

__all__ = [
    "ArrivalServer",
    "GatedServer",
    "LoopbackServer",
    "most_in_any_window",
    "read_request",
    "reply",
]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request from the connection: its head (the body is read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return head


def reply(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    """A JSON reply: ``status`` such as ``b"200 OK"``, ``extra`` header lines ending in CRLF."""
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/json\r\n"
        + extra
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def most_in_any_window(times: list[float], window: float) -> int:
    """The most arrivals in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window:
            first += 1
        most = max(most, last - first + 1)
    return most


class LoopbackServer:
    """An asyncio HTTP/1.1 server on 127.0.0.1 in a thread of the test process.

    Subclasses answer in :meth:`_serve`; ``with`` starts and stops it, closing
    the client's kept-alive connections on the way out.
    """

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=512)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for writer in list(self._writers):
                writer.close()  # the client's kept-alive connections, closed by us
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class GatedServer(LoopbackServer):
    """A loopback server whose held requests wait until :meth:`release`."""

    def __init__(self) -> None:
        super().__init__()
        self._release: asyncio.Event | None = None

    def _gate(self) -> asyncio.Event:
        """The event held requests wait on (made in the server's loop)."""
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    def release(self) -> None:
        """Let every held request (and every later one) through."""
        self._loop.call_soon_threadsafe(lambda: self._gate().set())


class ArrivalServer(LoopbackServer):
    """Answer 200 to every request and record its arrival (``time.monotonic``).

    Args:
        rate: Enforce a token bucket of ``rate`` requests per second (``None``: none).
        burst: The bucket's depth (requests accepted at once when it is full).
        refuse: Answer the first ``refuse`` requests 429 with ``Retry-After``.
        retry_after: The ``Retry-After`` seconds of those refusals.
    """

    def __init__(
        self,
        rate: float | None = None,
        burst: int = 1,
        refuse: int = 0,
        retry_after: float = 1.0,
    ) -> None:
        super().__init__()
        self.rate = rate
        self.burst = burst
        self.refuse = refuse
        self.retry_after = retry_after
        self.refused: list[float] = []
        self._level = float(burst)
        self._filled_at = time.monotonic()

    def _admit(self, now: float) -> bool:
        if len(self.arrivals) <= self.refuse:
            return False
        if self.rate is None:
            return True
        self._level = min(self.burst, self._level + (now - self._filled_at) * self.rate)
        self._filled_at = now
        if self._level >= 1:
            self._level -= 1
            return True
        return False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            now = time.monotonic()
            self.arrivals.append(now)
            if self._admit(now):
                body = json.dumps({"ok": True}).encode()
                status = b"200 OK"
                extra = b""
            else:
                self.refused.append(now)
                body = b'{"error": "rate limited"}'
                status = b"429 Too Many Requests"
                extra = f"Retry-After: {self.retry_after:g}\r\n".encode()
            writer.write(reply(status, body, extra))
            await writer.drain()
