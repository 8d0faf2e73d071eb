"""A real loopback forward proxy: absolute-form HTTP requests and CONNECT tunnels.

It records what it saw (method, target, Proxy-Authorization) so tests can check
that traffic went through it and that proxy credentials reached only the proxy.
With ``credentials`` set, it answers 407 to requests without them. With
``echo=True`` it forwards nothing: it answers 502 with the request head it
received as the body, as a debugging proxy may (credentials included).
"""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HOLD = 10.0


@dataclass(frozen=True)
class Seen:
    """One request the proxy handled."""

    method: str
    target: str
    proxy_authorization: str | None


def _recv_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b"", b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], MAX_HOLD)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if sock is a else a).sendall(data)


class ProxyServer:
    """A forward proxy on 127.0.0.1 (one request per client connection for plain HTTP)."""

    def __init__(self, credentials: tuple[str, str] | None = None, *, echo: bool = False) -> None:
        self.echo = echo
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.expected = (
            None
            if credentials is None
            else "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        )
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> ProxyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.callback(client.close)
            client.settimeout(MAX_HOLD)
            try:
                head, rest = _recv_head(client)
            except OSError:
                return
            if not head:
                return
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, version = request_line.split(" ")
            headers = [line.split(":", 1) for line in header_lines]
            auth = next(
                (value.strip() for name, value in headers if name.lower() == "proxy-authorization"),
                None,
            )
            with self._lock:
                self.seen.append(Seen(method, target, auth))
            if self.echo:
                body = head + b"\r\n\r\n"
                client.sendall(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                return
            if self.expected is not None and auth != self.expected:
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n'
                    b"Connection: close\r\n\r\n"
                )
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=MAX_HOLD)
                stack.callback(upstream.close)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                _pipe(client, upstream)
                return
            parts = urlsplit(target)
            upstream = socket.create_connection(
                (parts.hostname or "", parts.port or 80), timeout=MAX_HOLD
            )
            stack.callback(upstream.close)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            kept = [
                f"{name}:{value}"
                for name, value in headers
                if name.lower() not in ("proxy-authorization", "proxy-connection", "connection")
            ]
            forwarded = "\r\n".join(
                [
                    f"{method} {path or '/'} {version}",
                    *kept,
                    "Via: 1.1 test-proxy",
                    "Connection: close",
                    "",
                    "",
                ]
            )
            upstream.sendall(forwarded.encode("latin-1") + rest)
            # One request per client connection, said so in the reply, as real proxies do.
            reply, body = _recv_head(upstream)
            lines = [
                line
                for line in reply.decode("latin-1").split("\r\n")
                if not line.lower().startswith("connection:")
            ]
            client.sendall("\r\n".join([*lines, "Connection: close", "", ""]).encode() + body)
            _pipe(client, upstream)
