"""A loopback HTTP server with a scripted outage: it answers 200, or fails as told.

``server.mode`` is read at every request: ``"ok"`` answers 200; ``"503"``,
``"500"``, ``"400"``, ``"404"`` or ``"429"`` answer that status; ``"close"``
reads the request and closes the connection without a reply. Tests change the
mode between calls and read :attr:`counts` (requests seen per mode) to see,
from the server's side, which calls reached it.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from ._arrivals import LoopbackServer

__all__ = ["OutageServer"]

_REASONS = {
    "400": b"400 Bad Request",
    "404": b"404 Not Found",
    "429": b"429 Too Many Requests",
    "500": b"500 Internal Server Error",
    "503": b"503 Service Unavailable",
}


class OutageServer(LoopbackServer):
    """Answers by :attr:`mode`; counts every request it sees, by the mode it met."""

    def __init__(self, mode: str = "ok") -> None:
        super().__init__()
        self.mode = mode
        self.counts: Counter[str] = Counter()

    @property
    def total(self) -> int:
        """Every request seen."""
        return sum(self.counts.values())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            mode = self.mode
            self.counts[mode] += 1
            if mode == "close":
                return  # the connection is closed with no reply
            status = b"200 OK" if mode == "ok" else _REASONS[mode]
            body = b'{"ok": true}' if mode == "ok" else b'{"error": "scripted"}'
            extra = b"Retry-After: 0\r\n" if mode == "429" else b""
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: application/json\r\n"
                + extra
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
