"""What the benchmarks share: a cheap keep-alive HTTP server and a fixed set of workers.

The server runs in its own process (so the client process is the one measured):
``serve(protocol)`` is the child's side, :func:`started` the parent's. Run as a
script, this module serves :class:`Reply` (``python _loopback.py``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

BODY = b'{"ok":true}'
REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
    + BODY
)


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


def table(rows: list[dict[str, Any]]) -> None:
    """Print rows of figures as aligned columns (floats with three decimals)."""

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    keys = list(rows[0])
    widths = [max(len(k), *(len(cell(row[k])) for row in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
    for row in rows:
        print("  ".join(cell(row[k]).ljust(w) for k, w in zip(keys, widths, strict=True)))


def split_requests(buffer: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The complete requests at the start of ``buffer`` as ``(head, body)``, and the rest.

    A request is complete once its head and its ``Content-Length`` body are in.
    """
    requests: list[tuple[bytes, bytes]] = []
    while (end := buffer.find(b"\r\n\r\n")) >= 0:
        head = buffer[:end]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(buffer) < end + 4 + length:
            break
        requests.append((head, buffer[end + 4 : end + 4 + length]))
        buffer = buffer[end + 4 + length :]
    return requests, buffer


class Reply(asyncio.Protocol):
    """Answers every request head with the same small reply; keeps connections open."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = self.buffer.count(b"\r\n\r\n")
        if replies:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.answer(replies)

    def answer(self, replies: int) -> None:
        """Send ``replies`` replies (a subclass may send them later)."""
        if not self.transport.is_closing():
            self.transport.write(REPLY * replies)


def serve(protocol: Callable[[], asyncio.Protocol] = Reply) -> None:
    """The child's side: print the port, serve until the parent closes our stdin."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(protocol, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())


@contextmanager
def started(command: list[str] | None = None, core: int | None = None) -> Iterator[str]:
    """The parent's side: start the server process and yield its base URL.

    Args:
        command: The child's command line; by default this module's own server.
        core: Pin the server to this CPU core (the client runs on another).
    """
    command = command or [sys.executable, __file__]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    if core is not None:
        os.sched_setaffinity(server.pid, {core})
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{int(server.stdout.readline())}"
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


async def workers(send: Callable[[], Awaitable[object]], n: int, concurrency: int) -> None:
    """Make ``n`` calls of ``send`` with ``concurrency`` workers, each one after another."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await send()

    share, extra = divmod(n, concurrency)
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(concurrency)))


if __name__ == "__main__":
    serve(Reply)
