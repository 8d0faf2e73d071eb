"""Telemetry fixtures: the real OpenTelemetry SDK with in-memory exporters.

OpenTelemetry's global providers can be set once per process, so one session
fixture installs a ``TracerProvider`` and a ``LoggerProvider`` (or joins the
SDK providers something earlier in the run installed) with in-memory
exporters; the :func:`otel` fixture clears them for each test and registers a
fresh :class:`~pynector_otel.OtelPlugin` at run time, with installed plugins
turned off so the entry-point instance does not trace the same calls twice.
``server`` is a loopback HTTP server that records what it receives.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from opentelemetry import trace
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

from pynector import registry
from pynector_otel import OtelPlugin


@dataclass
class Exported:
    """The session's in-memory span and log exporters."""

    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    provider: TracerProvider


@pytest.fixture(scope="session")
def exported() -> Iterator[Exported]:
    resource = Resource.create({"service.name": "pynector-tests"})
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=resource)
        trace.set_tracer_provider(provider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = get_logger_provider()
    if not isinstance(logger_provider, LoggerProvider):
        logger_provider = LoggerProvider(resource=resource)
        set_logger_provider(logger_provider)
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    yield Exported(spans, logs, provider)
    # Later tests in this process (other packages') keep tracing: stop storing.
    spans.shutdown()
    logs.shutdown()


@dataclass
class Telemetry:
    """What one test sees: the plugin it registered and what was exported."""

    plugin: OtelPlugin
    exported: Exported

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self.exported.spans.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``."""
        (found,) = [s for s in self.spans() if s.name == name]
        return found

    def logs(self) -> list[ReadableLogRecord]:
        return list(self.exported.logs.get_finished_logs())

    def everything(self) -> str:
        """Every exported span, event and log record as one JSON-ish string."""
        parts = [span.to_json() for span in self.spans()]
        parts.extend(record.to_json() for record in self.logs())
        return "\n".join(parts)


@pytest.fixture
def otel(exported: Exported, monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    """A fresh plugin registered at run time; installed plugins off; exporters empty."""
    monkeypatch.setenv("PYNECTOR_PLUGINS", "")
    for name in (
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
    ):
        monkeypatch.delenv(name, raising=False)
    registry.clear_cache()
    plugin = OtelPlugin()
    name = registry.register_plugin(plugin, name="otel-test")
    exported.spans.clear()
    exported.logs.clear()
    yield Telemetry(plugin, exported)
    registry.unregister_plugin(name)
    monkeypatch.undo()
    registry.clear_cache()
    exported.spans.clear()
    exported.logs.clear()


def traceparent_of(span: ReadableSpan) -> str:
    """The ``traceparent`` header a server receives from inside ``span``."""
    context = span.context
    assert context is not None
    flags = int(context.trace_flags)
    return f"00-{format_trace_id(context.trace_id)}-{format_span_id(context.span_id)}-{flags:02x}"


# -- a loopback HTTP server -----------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Server:
    """``/status/<code>`` answers that status; ``/flaky/<key>?fail=n`` fails n times.

    ``/redirect?to=<url>`` redirects there (302).

    ``.../chat/completions`` and ``.../messages`` answer as OpenAI's and
    Anthropic's APIs would (:data:`LLM_REPLIES`).
    """

    url: str
    received: list[Received] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.hits.clear()


# What the loopback server answers to OpenAI's and Anthropic's SDKs.
LLM_REPLIES: dict[str, dict[str, Any]] = {
    "completions": {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    },
    "messages": {
        "id": "msg_loopback",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 8, "output_tokens": 3},
    },
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    state: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = [part for part in url.path.split("/") if part]
        with self.state.lock:
            self.state.received.append(
                Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            )
            hits = self.state.hits[url.path] = self.state.hits.get(url.path, 0) + 1
        status, extra = 200, {"Set-Cookie": "session=server-cookie-8c1e", "X-Request-Id": "r-1"}
        body = json.dumps({"path": url.path, "hits": hits}).encode()
        if url.path.endswith(("/chat/completions", "/messages")):
            body = json.dumps(LLM_REPLIES[parts[-1]]).encode()
        elif url.path == "/redirect":
            status = 302
            extra["Location"] = query["to"][0]
        elif len(parts) == 2 and parts[0] == "status":
            status = int(parts[1])
        elif parts and parts[0] == "flaky" and hits <= int(query.get("fail", ["1"])[0]):
            status = 503
            if "retry_after" in query:
                extra["Retry-After"] = query["retry_after"][0]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PURGE = _handle


@pytest.fixture(scope="session")
def http_server() -> Iterator[Server]:
    class Handler(_Handler):
        pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state = Server(f"http://127.0.0.1:{httpd.server_port}")
    Handler.state = state
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(http_server: Server) -> Server:
    http_server.reset()
    return http_server


@pytest.fixture
def configured(otel: Telemetry, pynector_logger: logging.Logger) -> Telemetry:
    """``configure_telemetry(service_name="orders", log_level="DEBUG")``, then empty exporters."""
    from pynector import configure_telemetry

    configure_telemetry(service_name="orders", log_level="DEBUG")
    otel.exported.logs.clear()
    return otel
