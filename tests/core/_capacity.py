"""A loopback provider with a hidden capacity: 429 above K requests in flight.

Latency grows with load (``base * (1 + 0.25 * in_flight / K)``), a request
that arrives while K are in flight is answered 429 at once (no Retry-After,
as an overloaded provider does), and K changes once, after ``change_after``
requests were served. Everything is counted by the server: each arrival's
in-flight count (itself included), each refusal, the phase it came in.
"""

from __future__ import annotations

import asyncio

from ._arrivals import LoopbackServer, read_request, reply

__all__ = ["CapacityServer"]

_OK = b'{"ok":true}'
_BUSY = b'{"error":"over capacity"}'


class CapacityServer(LoopbackServer):
    """Serve with at most ``capacity`` in flight; change it to ``then`` after ``change_after``.

    Attributes:
        in_flight: Requests being served now.
        seen: ``(phase, in_flight)`` of each arrival, ``in_flight`` counting it.
        refused: Refusals (429) per phase, ``[before, after]`` the change.
        served: Successes per phase.
    """

    def __init__(self, capacity: int, then: int, change_after: int, base: float = 0.01) -> None:
        super().__init__()
        self.capacity = capacity
        self.then = then
        self.change_after = change_after
        self.base = base
        self.in_flight = 0
        self.phase = 0
        self.seen: list[tuple[int, int]] = []
        self.refused = [0, 0]
        self.served = [0, 0]

    def in_phase(self, phase: int) -> list[int]:
        """The in-flight counts the arrivals of ``phase`` saw."""
        return [count for seen_phase, count in self.seen if seen_phase == phase]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            phase = self.phase
            self.seen.append((phase, self.in_flight + 1))
            if self.in_flight >= self.capacity:
                self.refused[phase] += 1
                writer.write(reply(b"429 Too Many Requests", _BUSY))
                await writer.drain()
                continue
            self.in_flight += 1
            try:
                await asyncio.sleep(self.base * (1 + 0.25 * self.in_flight / self.capacity))
            finally:
                self.in_flight -= 1
            self.served[phase] += 1
            if phase == 0 and self.served[0] >= self.change_after:
                self.phase = 1
                self.capacity = self.then
            writer.write(reply(b"200 OK", _OK))
            await writer.drain()
