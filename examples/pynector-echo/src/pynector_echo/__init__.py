"""pynector-echo: a complete third-party pynector transport in one module.

It implements only the four methods of the transport protocol. ``send`` keeps
the request and ``receive`` yields it back: ``bytes`` as chunks of at most
``chunk_size`` bytes (the client joins them into one ``bytes``), anything else
as a single item (the client returns it as is). The ``pyproject.toml`` table
``[project.entry-points."pynector.transports"]`` is all it takes for
``Pynector(transport_type="echo")`` to find it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from pynector.transport.protocol import Transport

__all__ = ["EchoTransport"]


class EchoTransport(Transport):
    """A transport that answers every request with the request itself.

    Args:
        chunk_size: The largest ``bytes`` chunk ``receive`` yields for a
            ``bytes`` request.

    Raises:
        ValueError: If ``chunk_size`` is not a positive integer.
    """

    def __init__(self, *, chunk_size: int = 4096) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(
                f"EchoTransport(chunk_size={chunk_size!r}) must be a positive integer, "
                "e.g. EchoTransport(chunk_size=4096)"
            )
        self.chunk_size = chunk_size
        self._connected = False
        self._pending: deque[Any] = deque()

    async def connect(self) -> None:
        """Open the (in-memory) channel."""
        self._connected = True

    async def disconnect(self) -> None:
        """Close the channel and drop any reply not yet received. Safe to call twice."""
        self._connected = False
        self._pending.clear()

    async def send(self, data: Any, **options: Any) -> None:
        """Keep ``data`` as the reply to the next :meth:`receive`; ``options`` are ignored.

        Raises:
            ConnectionError: If the transport is not connected; call :meth:`connect`
                first (the pynector client does this for you).
        """
        if not self._connected:
            raise ConnectionError(
                "EchoTransport is not connected; call 'await transport.connect()' first "
                "or let the Pynector client manage it"
            )
        self._pending.append(data)

    async def receive(self) -> AsyncIterator[Any]:
        """Yield the oldest request not yet received: bytes as chunks, anything else whole.

        Raises:
            ConnectionError: If the transport is not connected.
        """
        if not self._connected:
            raise ConnectionError(
                "EchoTransport is not connected; call 'await transport.connect()' first "
                "or let the Pynector client manage it"
            )
        if not self._pending:
            return
        data = self._pending.popleft()
        if isinstance(data, bytes | bytearray | memoryview):
            payload = bytes(data)
            for start in range(0, len(payload), self.chunk_size):
                yield payload[start : start + self.chunk_size]
        else:
            yield data
