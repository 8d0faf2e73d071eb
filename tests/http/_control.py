"""The control server: a loopback HTTP/1.1 server that counts what it sees.

Tests read its counters directly (it runs in a thread of the test process), so
retries, Retry-After waits, concurrency limits and connection releases are
verified from the server's side. Every behaviour is keyed by a ``key`` query
parameter so concurrent tests never share counters.
"""

from __future__ import annotations

import functools
import json
import select
import socket
import ssl
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Upper bound on any server-side wait, so a misbehaving test never hangs a thread.
MAX_HOLD = 10.0


@dataclass
class KeyStats:
    """What the server saw for one key."""

    attempts: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    times: list[float] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    disconnects: int = 0
    generation: int = 0


@functools.cache
def gzipped_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (about 1,000 times smaller): a "gzip bomb"."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(min(size, 1 << 20))
    parts = []
    left = size
    while left > 0:
        parts.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(compressor.flush())
    return b"".join(parts)


class ControlServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server with per-key counters and a connection count."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls
        self.cond = threading.Condition()
        self.stats: dict[str, KeyStats] = defaultdict(KeyStats)
        self.open_connections = 0
        self.connections_opened = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-request (or reject our certificate) are expected.
        pass

    def key(self, key: str) -> KeyStats:
        """The counters of ``key`` (a snapshot is not needed: read under the GIL)."""
        with self.cond:
            return self.stats[key]

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` holds (re-checked on every change) or time out."""
        with self.cond:
            return bool(self.cond.wait_for(predicate, timeout))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body go out in two writes: without TCP_NODELAY, Nagle's
    # algorithm and delayed ACKs would add ~40 ms to every reply.
    disable_nagle_algorithm = True
    server: ControlServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(MAX_HOLD)
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError):
                # A client that rejects our certificate hangs up here.
                self.request.close()
                raise
        super().setup()
        with self.server.cond:
            self.server.open_connections += 1
            self.server.connections_opened += 1
            self.server.cond.notify_all()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.cond:
                self.server.open_connections -= 1
                self.server.cond.notify_all()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True

    # -- plumbing ------------------------------------------------------------

    def _reply(
        self,
        status: int,
        body: bytes | str | Any = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        return b""

    def _client_gone(self, timeout: float) -> bool:
        """Wait until the client closes its end (or ``timeout``); True if it did."""
        sock = self.connection
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], left)
            if readable:
                try:
                    if not sock.recv(4096):
                        return True
                except OSError:
                    return True
        return False

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        body = self._body()
        key = query.get("key", "")
        server = self.server
        with server.cond:
            stats = server.stats[key]
            stats.attempts += 1
            attempt = stats.attempts
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            stats.times.append(time.monotonic())
            stats.headers.append(dict(self.headers.items()))
            stats.methods.append(self.command)
            server.cond.notify_all()
        try:
            self._route(parts.path, query, body, stats, attempt)
        finally:
            with server.cond:
                stats.in_flight -= 1
                server.cond.notify_all()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    # -- behaviours ------------------------------------------------------------

    def _route(
        self, path: str, query: dict[str, str], body: bytes, stats: KeyStats, attempt: int
    ) -> None:
        server = self.server
        if path in ("/echo", "/users", "/test") or path.startswith("/users/"):
            self._reply(
                int(query.get("status", "200")),
                {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "headers": dict(self.headers.items()),
                    "body": body.decode("utf-8", "replace"),
                    "attempt": attempt,
                },
            )
        elif path == "/flaky":
            # The first `fail` attempts answer `status` (with Retry-After if given).
            if attempt <= int(query.get("fail", "1")):
                headers = {}
                if "retry_after" in query:
                    headers["Retry-After"] = query["retry_after"]
                if "should_retry" in query:
                    headers["x-should-retry"] = query["should_retry"]
                self._reply(int(query.get("status", "503")), {"attempt": attempt}, headers)
            else:
                self._reply(200, {"attempt": attempt})
        elif path == "/gate":
            # Hold each request until `target` are in flight at once (or every one of
            # `total` has arrived), so max_in_flight shows the client's true limit.
            target, total = int(query["target"]), int(query["total"])
            with server.cond:
                if stats.in_flight >= target or stats.attempts >= total:
                    stats.generation += 1
                    server.cond.notify_all()
                else:
                    generation = stats.generation
                    server.cond.wait_for(
                        lambda: stats.generation != generation or stats.attempts >= total,
                        MAX_HOLD,
                    )
            self._reply(200, {"attempt": attempt})
        elif path == "/redirect":
            status = int(query.get("status", "302"))
            self._reply(status, {}, {"Location": query["to"]})
        elif path == "/stream":
            chunks, size = int(query.get("chunks", "10")), int(query.get("size", "1024"))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for index in range(chunks):
                self._chunk(bytes([index % 256]) * size)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/endless":
            # Chunks until the client hangs up; the hang-up is counted.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deadline = time.monotonic() + MAX_HOLD
            try:
                while time.monotonic() < deadline:
                    self._chunk(b"x" * 1024)
                    time.sleep(0.002)
            except OSError:
                pass
            self.close_connection = True
            with server.cond:
                stats.disconnects += 1
                server.cond.notify_all()
        elif path == "/broken_stream":
            # The first `fail` attempts open a chunked 200, send `sent` chunks, then
            # cut the connection; later ones send the chunks and end the body.
            sent = int(query.get("sent", "0"))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for index in range(sent if attempt <= int(query.get("fail", "1")) else 3):
                self._chunk(f"chunk {index} of attempt {attempt};".encode())
            if attempt <= int(query.get("fail", "1")):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/hold":
            # Headers and one chunk, then nothing until the client hangs up.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._chunk(b"first")
            gone = self._client_gone(MAX_HOLD)
            self.close_connection = True
            if gone:
                with server.cond:
                    stats.disconnects += 1
                    server.cond.notify_all()
        elif path == "/big":
            # `size` bytes of "x", or with `gzip=1` of zeros gzip-compressed on the wire.
            size = int(query["size"])
            headers = {}
            if query.get("gzip") == "1":
                data = gzipped_zeros(size)
                headers["Content-Encoding"] = "gzip"
            else:
                data = b"x" * size
            try:
                self._reply(200, data, headers, content_type="application/octet-stream")
            except OSError:
                self.close_connection = True  # the client gave up on the body
        elif path == "/headers":
            # `count` extra reply headers X-Big-<n>, each with a value of `size` bytes.
            size, count = int(query.get("size", "100")), int(query.get("count", "1"))
            extra = {f"X-Big-{index}": "h" * size for index in range(count)}
            self._reply(200, {"attempt": attempt}, extra)
        elif path == "/slow":
            time.sleep(float(query.get("seconds", "0.05")))
            self._reply(200, {"attempt": attempt})
        else:
            self._reply(404, {"error": f"no route {path}"})
