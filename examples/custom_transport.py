"""A custom transport with only the four protocol methods, used through the client.

    uv run python examples/custom_transport.py [--backend trio]

``RawHTTPTransport`` speaks just enough HTTP/1.1 over one TCP connection
(AnyIO streams) to GET JSON from the embedded demo server. It implements
``connect``, ``disconnect``, ``send`` and ``receive``, nothing else; the client
adds deadlines, retries and batches, runs one exchange at a time on the
connection, and reconnects after an exchange that was cut short.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

from pynector import Pynector, TimeoutError
from pynector.cli._demo_server import DemoServer
from pynector.errors import ConfigurationError, status_error_class
from pynector.transport.protocol import Transport


class RawHTTPTransport(Transport):
    """GET requests over one keep-alive HTTP/1.1 connection; replies are decoded JSON."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.connections = 0  # how many times connect() opened a connection
        self._stream: ByteStream | None = None
        self._reader: BufferedByteReceiveStream | None = None

    async def connect(self) -> None:
        self._stream = await anyio.connect_tcp(self.host, self.port)
        self._reader = BufferedByteReceiveStream(self._stream)
        self.connections += 1

    async def disconnect(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
        self._stream = self._reader = None

    async def send(self, data: Any, **options: Any) -> None:
        if not isinstance(data, dict) or not str(data.get("path", "")).startswith("/"):
            raise ConfigurationError(f"expected {{'path': '/...'}}, got {data!r}")
        assert self._stream is not None, "the client connects the transport first"
        request = f"GET {data['path']} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n"
        await self._stream.send(request.encode())

    async def receive(self) -> AsyncIterator[Any]:
        assert self._reader is not None, "the client connects the transport first"
        head = await self._reader.receive_until(b"\r\n\r\n", 65_536)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = dict(line.split(": ", 1) for line in header_lines)
        body = await self._reader.receive_exactly(int(headers["Content-Length"]))
        if status >= 400:
            raise status_error_class(status)(
                f"GET -> {status}: {body.decode(errors='replace')}", status_code=status
            )
        yield json.loads(body)


async def main(host: str, port: int) -> None:
    transport = RawHTTPTransport(host, port)
    async with Pynector(transport=transport) as client:
        print("GET /users/1 ->", await client.request({"path": "/users/1"}))

        requests: list[tuple[dict[str, str], dict[str, Any]]]
        requests = [({"path": f"/users/{n}"}, {}) for n in range(1, 11)]
        users = await client.batch_request(requests, max_concurrency=5)
        # A failed request's slot holds its exception (raise_on_error=False).
        ids = [user if isinstance(user, Exception) else user["id"] for user in users]
        print("batch of 10, replies in order:", ids)

        try:
            await client.request({"path": "/slow?seconds=5"}, timeout=0.3)
        except TimeoutError:
            print("GET /slow -> TimeoutError after 0.3 s")
        # The late reply to /slow never reaches this request: the client reconnected.
        print("GET /users/2 ->", await client.request({"path": "/users/2"}))

        reply = await client.request_with_retry({"path": "/flaky/raw"}, retry_delay=0.1)
        print("GET /flaky/raw with retries ->", reply)
    print("connections opened:", transport.connections)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    with DemoServer() as server:
        host, port = server.url.removeprefix("http://").split(":")
        anyio.run(main, host, int(port), backend=args.backend)
