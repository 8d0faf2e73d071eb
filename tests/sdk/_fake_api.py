"""A small fake of the OpenAI and Anthropic HTTP APIs, for driving the real SDKs.

A threaded stdlib HTTP/1.1 server (keep-alive, chunked SSE streams) on
127.0.0.1 and an ephemeral port. It answers:

* ``POST /v1/chat/completions`` (JSON, or SSE chunks with ``"stream": true``)
* ``POST /v1/embeddings`` (float lists, or base64 as the openai SDK asks by default)
* ``POST /v1/responses`` (JSON or SSE events)
* ``POST /v1/messages`` (JSON or SSE events) and ``POST /v1/messages/count_tokens``
* ``GET /v1/models`` (one page, in the format of the API the headers say)

Every request is recorded (method, path, headers, JSON body, client port), so
tests can count HTTP calls exactly. Behaviour is steered without sleeps:

* ``fail(path, status, headers=..., times=n)`` queues error replies in each
  API's error format, e.g. 429 with ``retry-after``, 409, or any status with
  ``x-should-retry``;
* ``fail_stream(path, kind, times=n)`` makes the next ``n`` streams to ``path``
  open with 200 and send an error event of type ``kind`` (Anthropic's
  ``overloaded_error``) before any content, then end;
* ``"model": "hold"`` makes a request wait for ``release()`` (for
  concurrency and timeout tests);
* ``"model": "endless"`` streams a few events, then keeps the stream open
  until the client disconnects, which sets :attr:`FakeAPI.stream_closed`;
* ``"model": "stream-error"`` streams one event, then an ``error`` event;
* ``"model": "cached"`` reports usage with every part: OpenAI's cached and
  reasoning tokens (:data:`OPENAI_CACHED_USAGE`), Anthropic's cache reads and
  writes (:data:`ANTHROPIC_CACHED_USAGE`);
* a chat-completions stream with ``"stream_options": {"include_usage": true}``
  ends with a chunk carrying the usage, as OpenAI's does;
* ``limit_window(limit, window, ...)`` enforces a fixed window of requests
  (or tokens, 7 a call) as a provider does, answering 429 past it, and
  announces what remains in OpenAI's or Anthropic's rate-limit headers.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

CREATED = 1_700_000_000
EMBEDDING = [0.25, -0.5, 1.0]
CACHED = "cached"
"""The model whose replies report every part of the usage."""
OPENAI_USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
OPENAI_CACHED_USAGE = {
    "prompt_tokens": 50,
    "completion_tokens": 20,
    "total_tokens": 70,
    "prompt_tokens_details": {"cached_tokens": 30},
    "completion_tokens_details": {"reasoning_tokens": 12},
}
ANTHROPIC_USAGE = {"input_tokens": 5, "output_tokens": 2}
ANTHROPIC_CACHED_USAGE = {
    "input_tokens": 5,
    "cache_read_input_tokens": 40,
    "cache_creation_input_tokens": 10,
    "output_tokens": 2,
}


@dataclass(frozen=True)
class Recorded:
    """One HTTP request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    peer_port: int


@dataclass
class _Window:
    limit: int
    window: float
    unit: str
    style: str
    start: float | None = None
    spent: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class _Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


def chat_completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": OPENAI_CACHED_USAGE if model == CACHED else OPENAI_USAGE,
    }


def _chat_chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _response(model: str, status: str) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
            }
        ]
        if done
        else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": _response_usage(model) if done else None,
    }


def _response_usage(model: str) -> dict[str, Any]:
    cached = model == CACHED
    return {
        "input_tokens": 50 if cached else 5,
        "output_tokens": 20 if cached else 2,
        "total_tokens": 70 if cached else 7,
        "input_tokens_details": {"cached_tokens": 30 if cached else 0},
        "output_tokens_details": {"reasoning_tokens": 12 if cached else 0},
    }


def message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": dict(ANTHROPIC_CACHED_USAGE if model == CACHED else ANTHROPIC_USAGE),
    }


def _sse(event: str | None, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def chat_events(model: str, include_usage: bool = False) -> list[bytes]:
    events = [
        _sse(None, _chat_chunk(model, {"role": "assistant", "content": "Hel"}, None)),
        _sse(None, _chat_chunk(model, {"content": "lo"}, None)),
        _sse(None, _chat_chunk(model, {"content": "!"}, None)),
        _sse(None, _chat_chunk(model, {}, "stop")),
    ]
    if include_usage:  # OpenAI's last chunk: no choices, the usage
        last = {**_chat_chunk(model, {}, None), "choices": []}
        last["usage"] = chat_completion(model)["usage"]
        events.append(_sse(None, last))
    return [*events, _sse(None, "[DONE]")]


def response_events(model: str) -> list[bytes]:
    delta = {"item_id": "msg_1", "output_index": 0, "content_index": 0, "logprobs": []}
    return [
        _sse(
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": _response(model, "in_progress"),
            },
        ),
        _sse(
            "response.output_text.delta",
            {"type": "response.output_text.delta", "sequence_number": 1, "delta": "Hel", **delta},
        ),
        _sse(
            "response.output_text.delta",
            {"type": "response.output_text.delta", "sequence_number": 2, "delta": "lo!", **delta},
        ),
        _sse(
            "response.completed",
            {
                "type": "response.completed",
                "sequence_number": 3,
                "response": _response(model, "completed"),
            },
        ),
    ]


def message_events(model: str) -> list[bytes]:
    start = {**message(model), "content": [], "stop_reason": None}
    start["usage"] = {**start["usage"], "output_tokens": 1}
    return [
        _sse("message_start", {"type": "message_start", "message": start}),
        _sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hel"},
            },
        ),
        _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "lo!"},
            },
        ),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 2},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]


def error_body(path: str, status: int) -> dict[str, Any]:
    """An error body in the format of the API that owns ``path``."""
    if path.startswith("/v1/messages"):
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": f"fake error {status}"}}
    return {
        "error": {
            "message": f"fake error {status}",
            "type": "fake_error",
            "param": None,
            "code": None,
        }
    }


def _stream_error(path: str, kind: str) -> bytes:
    """An error event inside a 200 stream, as the API that owns ``path`` sends it."""
    if path.startswith("/v1/messages"):
        error = {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}}
        return _sse("error", error)
    return _sse(None, {"error": {"message": f"fake {kind}", "type": kind}})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _hint_headers: dict[str, str] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ------------------------------------------------------------

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in {**(self._hint_headers or {}), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (self._hint_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, events: list[bytes]) -> None:
        self._start_stream()
        for event in events:
            self._chunk(event)
        self.wfile.write(b"0\r\n\r\n")

    def _endless(self, events: list[bytes]) -> None:
        """Send some events, then hold the stream open until the client hangs up."""
        self.close_connection = True
        try:
            self._start_stream()
            for event in events[:3]:
                self._chunk(event)
            self.connection.settimeout(30)
            while self.connection.recv(1024):
                pass
        except TimeoutError:
            return  # the client never hung up
        except OSError:
            pass  # the client hung up while we were writing: closed all the same
        self.server.api.stream_closed.set()

    # -- routing ---------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self._handle(body)

    def _handle(self, body: Any) -> None:
        api = self.server.api
        path = self.path.split("?", 1)[0]
        record = Recorded(
            self.command,
            path,
            {k.lower(): v for k, v in self.headers.items()},
            body,
            self.client_address[1],
        )
        reply, self._hint_headers = api._record(record)
        try:
            if reply is not None:
                self._send_json(
                    reply.status, reply.body or error_body(path, reply.status), reply.headers
                )
                return
            self._answer(path, body if isinstance(body, dict) else {})
        finally:
            api._done()

    def _answer(self, path: str, body: dict[str, Any]) -> None:
        api = self.server.api
        model = str(body.get("model", "fake-model"))
        if model == "hold":
            api.release_event.wait(30)
        streaming = body.get("stream") is True
        if streaming:
            kind = api._stream_failure(path)
            if kind is not None:
                return self._stream([_stream_error(path, kind)])
        if path == "/v1/chat/completions":
            if streaming:
                stream_options = body.get("stream_options")
                include_usage = isinstance(stream_options, dict) and bool(
                    stream_options.get("include_usage")
                )
                events = chat_events(model, include_usage)
                if model == "endless":
                    return self._endless(events)
                if model == "stream-error":
                    failure = {"error": {"message": "fake stream failure", "type": "server_error"}}
                    return self._stream([events[0], _sse("error", failure)])
                return self._stream(events)
            return self._send_json(200, chat_completion(model))
        if path == "/v1/embeddings":
            inputs = body.get("input", [])
            inputs = [inputs] if isinstance(inputs, str) else list(inputs)
            base64_wanted = body.get("encoding_format") == "base64"
            packed = base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": packed if base64_wanted else EMBEDDING,
                }
                for i in range(len(inputs))
            ]
            usage = {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}
            return self._send_json(
                200, {"object": "list", "data": data, "model": model, "usage": usage}
            )
        if path == "/v1/responses":
            if streaming:
                return self._stream(response_events(model))
            return self._send_json(200, _response(model, "completed"))
        if path == "/v1/messages":
            if streaming:
                events = message_events(model)
                if model == "endless":
                    return self._endless(events)
                if model in ("stream-error", "late-error"):
                    error: dict[str, Any] = {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    }
                    # stream-error: before any content; late-error: after some.
                    before = events[:1] if model == "stream-error" else events[:3]
                    return self._stream([*before, _sse("error", error)])
                return self._stream(events)
            return self._send_json(200, message(model))
        if path == "/v1/messages/count_tokens":
            return self._send_json(200, {"input_tokens": 12})
        if path == "/v1/models" and self.command == "GET":
            if "anthropic-version" in self.headers:
                claude = {"id": "claude-test", "type": "model", "display_name": "Claude"}
                page = {"data": [claude], "has_more": False, "first_id": "claude-test"}
                return self._send_json(200, {**page, "last_id": "claude-test"})
            gpt = {"id": "gpt-test", "object": "model", "created": CREATED, "owned_by": "us"}
            return self._send_json(200, {"object": "list", "data": [gpt]})
        return self._send_json(404, error_body(path, 404))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    api: FakeAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test, a closed stream) is expected.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalAPI:
    """A fake API on 127.0.0.1, served from a thread; ``start()`` it, read :attr:`url`, ``stop()``.

    Subclasses name their ``server_class`` (whose ``api`` is the fake) and
    ``handler_class``.
    """

    server_class: type[ThreadingHTTPServer]
    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        server = self.server_class(("127.0.0.1", 0), self.handler_class)
        server.api = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The OpenAI-style base URL: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        """The Anthropic-style base URL: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"


class FakeAPI(LocalAPI):
    """The fake API server; ``start()`` it, read :attr:`url`, ``stop()`` it."""

    server_class = _Server
    handler_class = _Handler

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.requests: list[Recorded] = []
        self._scripted: dict[str, deque[_Reply]] = {}
        self._stream_failures: dict[str, deque[str]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.stream_closed = threading.Event()
        self.release_event = threading.Event()
        self._window: _Window | None = None
        self.refused = 0
        """Requests answered 429 by :meth:`limit_window`."""
        self.arrivals: list[float] = []
        """When each POST arrived (``time.monotonic``)."""

    # -- life cycle --------------------------------------------------------------

    def stop(self) -> None:
        self.release_event.set()
        super().stop()

    # -- steering ----------------------------------------------------------------

    def fail(
        self,
        path: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status``."""
        with self._lock:
            queue = self._scripted.setdefault(path, deque())
            queue.extend(_Reply(status, dict(headers or {}), body) for _ in range(times))

    def fail_stream(self, path: str, kind: str = "overloaded_error", *, times: int = 1) -> None:
        """Open the next ``times`` streams to ``path`` with an error event, before any content."""
        with self._lock:
            self._stream_failures.setdefault(path, deque()).extend([kind] * times)

    def _stream_failure(self, path: str) -> str | None:
        with self._lock:
            queue = self._stream_failures.get(path)
            return queue.popleft() if queue else None

    def headers_of(self, path: str, name: str) -> list[str | None]:
        """The value of request header ``name`` (lower case) of every request to ``path``."""
        with self._lock:
            return [r.headers.get(name) for r in self.requests if r.path == path]

    def limit_window(
        self, limit: int, window: float, *, unit: str = "requests", style: str = "openai"
    ) -> None:
        """Accept ``limit`` requests (``unit="tokens"``: tokens, 7 a call) per fixed window.

        The windows start at the first POST and last ``window`` seconds. Every
        POST's reply carries what remains and when the window ends, in
        OpenAI's headers (``style="openai"``, durations) or Anthropic's
        (``"anthropic"``, RFC 3339 timestamps); one past the limit gets 429
        with no Retry-After.
        """
        with self._lock:
            self._window = _Window(limit, window, unit, style)

    def _window_reply(self, record: Recorded) -> tuple[_Reply | None, dict[str, str] | None]:
        window = self._window
        if window is None or record.method != "POST":
            return None, None
        now = time.monotonic()
        self.arrivals.append(now)
        if window.start is None:
            window.start = now
        begin = window.start + math.floor((now - window.start) / window.window) * window.window
        cost = 1 if window.unit == "requests" else 7  # the usage every plain reply reports
        spent = sum(c for at, c in window.spent if at >= begin) + cost
        reset = begin + window.window - now
        refused = spent > window.limit
        if not refused:
            window.spent.append((now, cost))
        remaining = str(max(window.limit - spent, 0))
        if window.style == "anthropic":
            # Whole milliseconds, rounded up: the stamp is never before the window's end.
            seconds, milliseconds = divmod(math.ceil((time.time() + reset) * 1000), 1000)
            day_and_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            stamp = f"{day_and_time}.{milliseconds:03d}Z"
            headers = {
                f"anthropic-ratelimit-{window.unit}-remaining": remaining,
                f"anthropic-ratelimit-{window.unit}-reset": stamp,
            }
        else:
            headers = {
                f"x-ratelimit-remaining-{window.unit}": remaining,
                f"x-ratelimit-reset-{window.unit}": f"{reset * 1000:.0f}ms",
            }
        if refused:
            self.refused += 1
            return _Reply(429, headers), headers
        return None, headers

    def release(self) -> None:
        """Let every ``"model": "hold"`` request (now and later) answer."""
        self.release_event.set()

    def wait_in_flight(self, n: int, timeout: float = 30.0) -> bool:
        """Block until ``n`` requests are being handled at once."""
        with self._cond:
            return self._cond.wait_for(lambda: self.in_flight >= n, timeout)

    # -- reading -------------------------------------------------------------------

    def count(self, path: str | None = None) -> int:
        """How many requests arrived (to ``path``, if given)."""
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def last(self) -> Recorded:
        with self._lock:
            return self.requests[-1]

    # -- used by the handler -------------------------------------------------------

    def _record(self, record: Recorded) -> tuple[_Reply | None, dict[str, str] | None]:
        with self._cond:
            self.requests.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cond.notify_all()
            limited, hints = self._window_reply(record)
            queue = self._scripted.get(record.path)
            return (queue.popleft() if queue else limited), hints

    def _done(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()


if __name__ == "__main__":  # pragma: no cover - manual runs
    api = FakeAPI().start()
    print(api.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        api.stop()
