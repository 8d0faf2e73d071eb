"""The WebSocket transport: the four methods of the pynector transport protocol."""

from __future__ import annotations

import base64
import contextlib
import json as jsonlib
import os
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpcore2
import httpx2
import wsproto.events
import wsproto.utilities
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.frame_protocol import CloseReason

from pynector.errors import (
    ConfigurationError,
    ConnectionError,
    ProtocolError,
    TimeoutError,
    status_error_class,
)
from pynector.redact import is_secret_header, redact_url
from pynector.transport.protocol import Transport

__all__ = ["WebSocketTransport"]

_READ_SIZE = 65_536
_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def _http_url(url: object) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"url={url!r} must be a WebSocket URL, e.g. url='wss://stream.example.com/rpc'"
        )
    scheme, rest = url.split("://", 1)
    if scheme.lower() not in _SCHEMES:
        raise ConfigurationError(
            f"url={redact_url(url)!r} has the scheme {scheme!r}; use ws://, wss:// "
            "(or http://, https://), e.g. url='wss://stream.example.com/rpc'"
        )
    return f"{_SCHEMES[scheme.lower()]}://{rest}"


class WebSocketTransport(Transport):
    """One WebSocket connection; each request message gets one reply message.

    ``send(data)`` sends one message: ``str`` as a text message, ``bytes`` as a
    binary one, anything else as JSON text when ``json=True``. ``receive()``
    yields the next message from the server: ``str`` or ``bytes``, or the
    decoded JSON value of a text message when ``json=True``. Pings from the
    server are answered while a reply is awaited.

    httpx2 opens the connection and performs the HTTP/1.1 Upgrade (its TLS,
    proxy and timeout handling apply); wsproto frames the messages. No
    background task is involved, so :meth:`connect` and :meth:`disconnect` may
    run in different tasks, as the pynector client requires of a transport.

    Args:
        url: ``ws://`` or ``wss://`` URL of the endpoint.
        headers: Extra headers for the opening handshake (``Authorization``...).
        subprotocols: Subprotocols to offer; the chosen one is :attr:`subprotocol`.
        json: Encode requests and decode text replies as JSON.
        connect_timeout: Seconds allowed for the TCP, TLS and WebSocket handshakes.
        max_message_size: The largest reply accepted, in bytes.
        verify: TLS verification, as httpx2 takes it (``True``, a CA bundle path,
            an ``ssl.SSLContext``, or ``False``).

    Raises:
        ConfigurationError: For a bad option.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        subprotocols: Sequence[str] | None = None,
        json: bool = False,
        connect_timeout: float = 10.0,
        max_message_size: int = 1_048_576,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        self._http_url = _http_url(url)
        self.url = url
        self.headers = dict(headers or {})
        self.subprotocols = list(subprotocols or [])
        self.json = json
        if not isinstance(connect_timeout, int | float) or not connect_timeout > 0:
            raise ConfigurationError(
                f"connect_timeout={connect_timeout!r} must be a positive number of seconds, "
                "e.g. connect_timeout=10.0"
            )
        self.connect_timeout = float(connect_timeout)
        if isinstance(max_message_size, bool) or not isinstance(max_message_size, int):
            raise ConfigurationError(
                f"max_message_size={max_message_size!r} must be a whole number of bytes, "
                "e.g. max_message_size=1_048_576"
            )
        self.max_message_size = max_message_size
        self.verify = verify
        self.subprotocol: str | None = None
        """The subprotocol the server chose, once connected."""
        self._client: httpx2.AsyncClient | None = None
        self._response: httpx2.Response | None = None
        self._stream: httpcore2.AsyncNetworkStream | None = None
        self._ws: Connection | None = None

    def __repr__(self) -> str:
        shown = {k: "[redacted]" if is_secret_header(k) else v for k, v in self.headers.items()}
        return f"WebSocketTransport(url={redact_url(self.url)!r}, headers={shown!r})"

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open."""
        return self._ws is not None

    async def connect(self) -> None:
        """Open the connection and perform the WebSocket opening handshake.

        Raises:
            ConnectionError: If the server cannot be reached (retryable) or is
                not a WebSocket endpoint.
            HTTPStatusError: If the server refused the upgrade with a status
                (401, 403, 404, 5xx ...); the subclass follows the status.
            TimeoutError: If the handshakes took longer than ``connect_timeout``.
        """
        if self._ws is not None:
            return
        key = base64.b64encode(os.urandom(16)).decode()
        headers = {
            **self.headers,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        }
        if self.subprotocols:
            headers["Sec-WebSocket-Protocol"] = ", ".join(self.subprotocols)
        client = httpx2.AsyncClient(timeout=self.connect_timeout, verify=self.verify)
        where = redact_url(self.url)
        try:
            response = await client.send(
                client.build_request("GET", self._http_url, headers=headers), stream=True
            )
        except httpx2.TimeoutException as exc:
            await client.aclose()
            raise TimeoutError(
                f"WebSocket handshake with {where} took longer than {self.connect_timeout} s",
                timeout=self.connect_timeout,
            ) from exc
        except httpx2.TransportError as exc:
            await client.aclose()
            raise ConnectionError(f"could not connect to {where}: {exc}") from exc
        if response.status_code != 101:
            await response.aread()
            await response.aclose()
            await client.aclose()
            error_class = status_error_class(response.status_code)
            raise error_class(
                f"{where} refused the WebSocket upgrade: {response.status_code}"
                f"{' ' + response.reason_phrase if response.reason_phrase else ''}; "
                "check the URL and the handshake headers",
                status_code=response.status_code,
                response=response,
            )
        accept = response.headers.get("sec-websocket-accept")
        if accept != wsproto.utilities.generate_accept_token(key.encode()).decode():
            await response.aclose()
            await client.aclose()
            raise ConnectionError(
                f"{where} answered 101 without a valid Sec-WebSocket-Accept: "
                "it is not a WebSocket server",
                retryable=False,
            )
        self._client, self._response = client, response
        self._stream = response.extensions["network_stream"]
        self._ws = Connection(ConnectionType.CLIENT)
        self.subprotocol = response.headers.get("sec-websocket-protocol")

    async def disconnect(self) -> None:
        """Send a close frame (best effort) and close the connection. Safe to call twice."""
        ws, stream, response, client = self._ws, self._stream, self._response, self._client
        self._ws = self._stream = self._response = self._client = None
        if ws is not None and stream is not None:
            if ws.state is ConnectionState.OPEN:
                closing = ws.send(wsproto.events.CloseConnection(CloseReason.NORMAL_CLOSURE))
                # Best effort: the peer may be gone already.
                with contextlib.suppress(httpcore2.NetworkError, httpcore2.TimeoutException):
                    await stream.write(closing, 1.0)
            await stream.aclose()
        if response is not None:
            await response.aclose()
        if client is not None:
            await client.aclose()

    def _open(self) -> tuple[Connection, httpcore2.AsyncNetworkStream]:
        if self._ws is None or self._stream is None:
            raise ConnectionError(
                "the WebSocket is not connected; call 'await transport.connect()' first "
                "or let the Pynector client manage it",
                retryable=False,
            )
        return self._ws, self._stream

    async def send(self, data: Any, **options: Any) -> None:
        """Send ``data`` as one message.

        Raises:
            ConfigurationError: For data that is neither ``str`` nor ``bytes``
                (without ``json=True``), or for any per-request option.
            ConnectionError: If the connection broke (retryable).
        """
        if options:
            raise ConfigurationError(
                f"the websocket transport takes no per-request options; got {sorted(options)}"
            )
        event: wsproto.events.Event
        if isinstance(data, str):
            event = wsproto.events.TextMessage(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            event = wsproto.events.BytesMessage(bytes(data))
        elif self.json:
            event = wsproto.events.TextMessage(jsonlib.dumps(data))
        else:
            raise ConfigurationError(
                f"cannot send {type(data).__name__} over a WebSocket: pass str or bytes, "
                "or create the transport with json=True to send JSON values"
            )
        ws, stream = self._open()
        try:
            await stream.write(ws.send(event))
        except httpcore2.NetworkError as exc:
            raise ConnectionError(f"the WebSocket to {redact_url(self.url)} broke: {exc}") from exc

    async def receive(self) -> AsyncIterator[Any]:
        """Yield the next message from the server (one item).

        Raises:
            ConnectionError: If the server closed the WebSocket or the connection
                broke (retryable).
            ProtocolError: If the server broke the WebSocket protocol, the reply
                was larger than ``max_message_size``, or (with ``json=True``) it
                was not JSON.
        """
        ws, stream = self._open()
        parts: list[Any] = []
        size = 0
        while True:
            for event in ws.events():
                if isinstance(event, wsproto.events.Ping):
                    await stream.write(ws.send(event.response()))
                elif isinstance(event, wsproto.events.CloseConnection):
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        await stream.write(ws.send(event.response()))
                    raise ConnectionError(
                        f"the server closed the WebSocket ({int(event.code)}"
                        f"{': ' + event.reason if event.reason else ''})"
                    )
                elif isinstance(event, wsproto.events.Message):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > self.max_message_size:
                        raise ProtocolError(
                            f"the reply is larger than max_message_size={self.max_message_size} "
                            "bytes; raise max_message_size to accept it"
                        )
                    if event.message_finished:
                        yield self._decode(parts)
                        return
            try:
                chunk = await stream.read(_READ_SIZE)
            except httpcore2.NetworkError as exc:
                raise ConnectionError(
                    f"the WebSocket to {redact_url(self.url)} broke: {exc}"
                ) from exc
            try:
                ws.receive_data(chunk or None)  # b"" means the peer closed the socket
            except wsproto.utilities.RemoteProtocolError as exc:
                raise ProtocolError(f"the server broke the WebSocket protocol: {exc}") from exc

    def _decode(self, parts: list[Any]) -> Any:
        if isinstance(parts[0], str):
            text = "".join(parts)
            if not self.json:
                return text
            try:
                return jsonlib.loads(text)
            except ValueError as exc:
                raise ProtocolError(f"the reply is not JSON: {text[:200]!r}") from exc
        return b"".join(parts)
