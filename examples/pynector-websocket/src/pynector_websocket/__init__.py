"""pynector-websocket: a WebSocket transport for pynector.

Installed, it registers ``transport_type="websocket"``::

    from pynector import Pynector

    url = "wss://rpc.example.com/ws"
    async with Pynector(transport_type="websocket", url=url, json=True) as client:
        reply = await client.request({"method": "status"})

Each request is one message and its reply the next message from the server.
The transport implements only the four methods of
``pynector.transport.protocol.Transport``; the client adds deadlines, retries,
batches (one exchange at a time on the connection) and rate limits.
"""

from ._transport import WebSocketTransport as WebSocketTransport

__all__ = ["WebSocketTransport"]
