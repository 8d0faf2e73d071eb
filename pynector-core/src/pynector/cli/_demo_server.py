"""The loopback HTTP server behind ``pynector demo``: no network, no set-up.

A standard-library threading server on 127.0.0.1 and an ephemeral port, with a
few endpoints that show what the client does with slow and failing servers, and
a minimal OpenAI-compatible ``POST /v1/chat/completions`` for the SDK transport.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

__all__ = ["DemoServer"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # the demo prints its own story

    def _reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = [part for part in url.path.split("/") if part]
        with self.server.lock:
            self.server.hits[url.path] += 1
            hits = self.server.hits[url.path]
        if parts == ["users"]:
            limit = int(query.get("limit", ["3"])[0])
            self._reply(200, [{"id": n, "name": f"user {n}"} for n in range(1, limit + 1)])
        elif len(parts) == 2 and parts[0] == "users":
            self._reply(200, {"id": int(parts[1]), "name": f"user {parts[1]}"})
        elif parts == ["slow"]:
            self.server.stopping.wait(float(query.get("seconds", ["5"])[0]))
            self._reply(200, {"slow": True})
        elif len(parts) == 2 and parts[0] == "flaky":
            # First a 503, then a 429 asking for a one-second pause, then success.
            if hits == 1:
                self._reply(503, {"error": "temporarily unavailable"})
            elif hits == 2:
                self._reply(429, {"error": "slow down"}, {"Retry-After": "1"})
            else:
                self._reply(200, {"recovered_after_attempts": hits})
        elif len(parts) == 2 and parts[0] == "items":
            number = int(parts[1])
            if number % 25 == 0 and hits == 1:
                self._reply(503, {"error": "busy, try again"})
            else:
                self._reply(200, {"item": number})
        elif len(parts) == 2 and parts[0] == "orders":
            # A little work per order, so a batch of them takes long enough to stop.
            self.server.stopping.wait(_ORDER_SECONDS)
            self._reply(200, {"order": int(parts[1]), "status": "shipped"})
        else:
            self._reply(404, {"error": f"no such path: {url.path}"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        with self.server.lock:
            self.server.hits[url.path] += 1
        if url.path != "/v1/chat/completions":
            self._reply(404, {"error": {"message": f"no such path: {url.path}"}})
        elif not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._reply(400, {"error": {"message": "expected a JSON object with messages"}})
        else:
            self._reply(200, _chat_completion(body))


_ORDER_SECONDS = 0.02

# A canned answer, as a chat model would give it, whatever the question.
_ANSWER = "Hello from the demo server: pynector sent this through the openai SDK."


def _chat_completion(body: dict[str, object]) -> dict[str, object]:
    """An OpenAI chat completion (the fields the SDKs require), with word-count usage."""
    messages = body["messages"]
    assert isinstance(messages, list)
    prompt = sum(
        len(str(message.get("content", "")).split())
        for message in messages
        if isinstance(message, dict)
    )
    return {
        "id": "chatcmpl-demo",
        "object": "chat.completion",
        "created": 1700000000,
        "model": str(body.get("model", "demo-model")),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": len(_ANSWER.split()),
            "total_tokens": prompt + len(_ANSWER.split()),
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # The default listen backlog (5) drops connects from a batch of 20 at once, and a
    # dropped SYN costs a one-second retransmit that would show up as p95 latency.
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.stopping = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (the timeout demo) is expected


class DemoServer:
    """Serve the demo endpoints in a background thread while the block runs.

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        hits: How many requests each path received.
    """

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.hits = self._server.hits

    def __enter__(self) -> DemoServer:
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
