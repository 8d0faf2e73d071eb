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
from typing import Any

from pynector import Pynector
from pynector.errors import TransportError

from ._arrivals import LoopbackServer, read_request, reply

__all__ = ["SETTINGS", "OutageServer", "calls"]

SETTINGS = {"failure_ratio": 0.5, "minimum_calls": 4, "window": 30, "cooldown": 60}
"""A breaker that opens after 4 failed calls and stays open for the whole test."""


async def calls(client: Pynector[Any, Any], n: int) -> list[BaseException | None]:
    """Make ``n`` requests one after another: each one's error, or ``None``."""
    outcomes: list[BaseException | None] = []
    for _ in range(n):
        try:
            await client.request({"path": "/"})
        except TransportError as exc:
            outcomes.append(exc)
        else:
            outcomes.append(None)
    return outcomes


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
            await read_request(reader)
            mode = self.mode
            self.counts[mode] += 1
            if mode == "close":
                return  # the connection is closed with no reply
            status = b"200 OK" if mode == "ok" else _REASONS[mode]
            body = b'{"ok": true}' if mode == "ok" else b'{"error": "scripted"}'
            extra = b"Retry-After: 0\r\n" if mode == "429" else b""
            writer.write(reply(status, body, extra))
            await writer.drain()
