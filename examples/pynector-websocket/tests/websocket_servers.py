"""The WebSocket servers the tests run against, and what they record.

``app`` is an ASGI application (served by hypercorn in ``conftest.py``);
``serve_pings`` is a bare wsproto server that pings the client before each
reply, which an ASGI application cannot do.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import wsproto
import wsproto.events

TOKEN = "ws-secret-4f2a9c"
"""The bearer token ``/private`` wants in the handshake."""


@dataclass
class Server:
    """What the test server saw."""

    url: str
    handshakes: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)

    def ws(self, path: str) -> str:
        return f"{self.url}{path}"


async def _reply(message: str, server: Server) -> dict[str, Any] | None:
    """The app's answer to one text message; ``None`` closes the WebSocket."""
    server.seen[message] += 1
    if message.startswith("slow:"):
        await asyncio.sleep(float(message.split(":", 1)[1]))
        return {"type": "websocket.send", "text": "late"}
    if message.startswith("close-once:") and server.seen[message] == 1:
        return None
    if message == "big":
        return {"type": "websocket.send", "text": "x" * 100_000}
    if message == "not-json":
        return {"type": "websocket.send", "text": "{oops"}
    try:
        value = json.loads(message)
    except ValueError:
        return {"type": "websocket.send", "text": message}
    return {"type": "websocket.send", "text": json.dumps({"echo": value})}


def app(server: Server) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert scope["type"] == "websocket"
        path = scope["path"]
        server.handshakes[path] += 1
        await receive()  # websocket.connect
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if path == "/private" and headers.get("authorization") != f"Bearer {TOKEN}":
            await send({"type": "websocket.close", "code": 1008})  # refused: HTTP 403
            return
        offered = scope.get("subprotocols") or []
        await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            if event.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": event["bytes"][::-1]})
                continue
            reply = await _reply(event["text"], server)
            if reply is None:
                await send({"type": "websocket.close", "code": 1011, "reason": "going away"})
                return
            await send(reply)

    return app


def serve_pings(listener: socket.socket, pongs: list[bytes]) -> None:
    sock, _ = listener.accept()
    with sock:
        ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        while True:
            data = sock.recv(65536)
            if not data:
                return
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, wsproto.events.Request):
                    sock.sendall(ws.send(wsproto.events.AcceptConnection()))
                elif isinstance(event, wsproto.events.TextMessage):
                    # Ping first; answer only once the pong is back.
                    sock.sendall(ws.send(wsproto.events.Ping(b"are-you-there")))
                elif isinstance(event, wsproto.events.Pong):
                    pongs.append(bytes(event.payload))
                    sock.sendall(ws.send(wsproto.events.TextMessage("pong received")))
                elif isinstance(event, wsproto.events.CloseConnection):
                    sock.sendall(ws.send(event.response()))
                    return
