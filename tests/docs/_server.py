"""The example API the documentation talks to, on 127.0.0.1.

The docs write ``https://api.example.com`` for "your API"; the snippet tests
replace it with :attr:`ExampleAPI.url`. The server answers what the pages ask
of it, and 404 for anything else, so a snippet with a wrong path fails:

* ``GET /users?limit=N``, ``GET /users/{id}``, ``POST /users``
* ``GET /export``: NDJSON, sent in chunks (chunked transfer encoding)
* ``POST /orders``, ``POST /jobs``: 201 / 202 with the JSON body echoed
* ``GET /slow?seconds=S``: answers after S seconds (or when the server stops)
* ``GET /flaky/{key}``: 503, then 429 with ``Retry-After: 1``, then 200
* ``GET /items/{n}``, ``GET /test``: 200

It counts requests per path and the most requests in flight at once.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _export(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for n in range(1, 6):
            line = json.dumps({"id": n, "name": f"user {n}"}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = [part for part in url.path.split("/") if part]
        body = self._body() if self.command in ("POST", "PUT", "PATCH") else None
        with self.server.lock:
            self.server.hits[url.path] += 1
            hits = self.server.hits[url.path]
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            self._route(self.command, parts, query, body, hits)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def _route(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: Any, hits: int
    ) -> None:
        if method == "GET" and parts == ["users"]:
            limit = int(query.get("limit", ["3"])[0])
            self._reply(200, [{"id": n, "name": f"user {n}"} for n in range(1, limit + 1)])
        elif method == "POST" and parts == ["users"]:
            self._reply(201, {"id": 4, **(body or {})})
        elif method == "GET" and len(parts) == 2 and parts[0] in ("users", "items"):
            self._reply(200, {"id": int(parts[1]), "name": f"{parts[0][:-1]} {parts[1]}"})
        elif method == "GET" and parts == ["export"]:
            self._export()
        elif method == "POST" and parts == ["orders"]:
            key = self.headers.get("Idempotency-Key")
            self._reply(201, {"order": body, "idempotency_key": key})
        elif method == "POST" and parts == ["jobs"]:
            self._reply(202, {"job": 1, "params": body})
        elif method == "GET" and parts == ["slow"]:
            self.server.stopping.wait(float(query.get("seconds", ["5"])[0]))
            self._reply(200, {"slow": True})
        elif method == "GET" and len(parts) == 2 and parts[0] == "flaky":
            if hits == 1:
                self._reply(503, {"error": "temporarily unavailable"})
            elif hits == 2:
                self._reply(429, {"error": "slow down"}, {"Retry-After": "1"})
            else:
                self._reply(200, {"recovered_after_attempts": hits})
        elif method == "GET" and parts == ["test"]:
            self._reply(200, {"ok": True})
        else:
            self._reply(404, {"error": f"no such endpoint: {method} /{'/'.join(parts)}"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (a timeout example) is expected


class ExampleAPI:
    """Serve the example API in a background thread while the block runs."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    @property
    def requests(self) -> int:
        """How many requests arrived so far."""
        with self._server.lock:
            return sum(self._server.hits.values())

    def reset(self) -> None:
        """Forget the counters (the flaky endpoints fail again)."""
        with self._server.lock:
            self._server.hits.clear()
            self._server.max_in_flight = 0

    def __enter__(self) -> ExampleAPI:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
