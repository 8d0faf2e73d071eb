"""HTTP semantic conventions and W3C trace context, against a real loopback server."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import (
    NoOpTracerProvider,
    SpanKind,
    StatusCode,
    format_trace_id,
)

import pynector
from pynector import Pynector, registry
from pynector.errors import ConnectionError, NotFoundError, ServerError

from .conftest import Server, Telemetry, traceparent_of


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_a_request_span_follows_the_http_client_conventions(
    otel: Telemetry, server: Server
) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        response = await client.request({"path": "/users", "params": {"limit": 2}})
    assert response.status_code == 200
    (span,) = otel.spans()
    port = int(server.url.rpartition(":")[2])
    assert span.name == "GET"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    found = attributes(span)
    assert str(found.pop("user_agent.original")).startswith("pynector-http/")
    assert found == {
        "http.request.method": "GET",
        "url.full": f"{server.url}/users?limit=2",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": port,
        "network.peer.address": "127.0.0.1",
        "network.peer.port": port,
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
        "pynector.transport": "http",
        "pynector.attempt": 1,
    }


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "error"), [(404, NotFoundError), (500, ServerError)])
async def test_an_error_status_is_the_error_type(
    otel: Telemetry, server: Server, status: int, error: type[Exception]
) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        with pytest.raises(error):
            await client.request({"path": f"/status/{status}", "method": "POST", "json": {}})
    (span,) = otel.spans()
    assert span.name == "POST"
    assert span.status.status_code is StatusCode.ERROR
    found = attributes(span)
    assert found["error.type"] == str(status)
    assert found["http.response.status_code"] == status
    assert found["url.full"] == f"{server.url}/status/{status}"


@pytest.mark.anyio
async def test_a_connection_failure_is_the_error_type(otel: Telemetry) -> None:
    port = closed_port()
    async with Pynector(transport_type="http") as client:
        with pytest.raises(ConnectionError):
            await client.request({"url": f"http://127.0.0.1:{port}/x"})
    (span,) = otel.spans()
    found = attributes(span)
    assert found["error.type"] == "pynector.errors.ConnectionError"
    assert found["url.full"] == f"http://127.0.0.1:{port}/x"
    assert found["server.port"] == port
    assert "http.response.status_code" not in found
    assert span.status.status_code is StatusCode.ERROR


@pytest.mark.anyio
async def test_an_unknown_method_is_recorded_as_other(otel: Telemetry, server: Server) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/cache", "method": "purge"})
    (span,) = otel.spans()
    assert span.name == "HTTP"
    assert attributes(span)["http.request.method"] == "_OTHER"
    assert attributes(span)["http.request.method_original"] == "PURGE"


@pytest.mark.anyio
async def test_the_server_receives_the_request_spans_traceparent(
    otel: Telemetry, server: Server
) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/users"})
    (span,) = otel.spans()
    (received,) = server.received
    assert received.headers["traceparent"] == traceparent_of(span)


@pytest.mark.anyio
async def test_each_attempt_sends_its_own_span_as_parent(otel: Telemetry, server: Server) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        response = await client.request_with_retry(
            {"path": "/flaky/a", "params": {"fail": 1}}, max_retries=2, retry_delay=0.001
        )
    assert response.json()["hits"] == 2
    first, second, retry = otel.spans()
    assert [r.headers["traceparent"] for r in server.received] == [
        traceparent_of(first),
        traceparent_of(second),
    ]
    assert retry.name == "pynector.retry"
    assert attributes(first)["error.type"] == "503"
    assert "http.request.resend_count" not in attributes(first)
    assert attributes(second)["http.request.resend_count"] == 1
    assert attributes(second)["http.response.status_code"] == 200


@pytest.mark.anyio
async def test_a_retry_after_reply_is_recorded_as_the_reason(
    otel: Telemetry, server: Server
) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request_with_retry(
            {"path": "/flaky/b", "params": {"fail": 1, "retry_after": 0}},
            max_retries=1,
            retry_delay=0.001,
        )
    _first, second, retry = otel.spans()
    (wait,) = retry.events
    assert dict(wait.attributes or {}) == {
        "pynector.attempt": 1,
        "pynector.retry.delay": 0.0,
        "pynector.retry.reason": "retry-after",
        "error.type": "pynector.errors.ServerError",
    }
    assert attributes(second)["pynector.retry.reason"] == "retry-after"


@pytest.mark.anyio
async def test_batch_requests_carry_the_batch_trace(otel: Telemetry, server: Server) -> None:
    requests: list[tuple[Any, dict[str, Any]]] = [({"path": f"/items/{n}"}, {}) for n in range(3)]
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.batch_request(requests, max_concurrency=3)
    batch = otel.span("pynector.batch")
    assert batch.context is not None
    sent = {r.headers["traceparent"] for r in server.received}
    assert sent == {traceparent_of(s) for s in otel.spans() if s.name == "GET"}
    assert {value.split("-")[1] for value in sent} == {format_trace_id(batch.context.trace_id)}


@pytest.mark.anyio
async def test_no_trace_context_is_sent_when_telemetry_is_disabled(
    otel: Telemetry, server: Server
) -> None:
    async with Pynector(
        transport_type="http", base_url=server.url, enable_telemetry=False
    ) as client:
        await client.request({"path": "/users"})
    (received,) = server.received
    assert "traceparent" not in received.headers
    assert otel.spans() == []


class _TraceHeader:
    """A telemetry plugin that always has somewhere to send data, and adds a header."""

    pynector_telemetry = True

    def __init__(self) -> None:
        self.calls = 0

    @pynector.hookimpl
    def pynector_headers(self, headers: dict[str, str]) -> None:
        self.calls += 1
        headers["x-trace"] = "on"


@pytest.mark.anyio
async def test_a_client_with_telemetry_off_never_asks_a_telemetry_plugin_for_headers(
    otel: Telemetry, server: Server
) -> None:
    plugin = _TraceHeader()
    for enabled in (True, False):
        async with Pynector(
            transport_type="http",
            base_url=server.url,
            enable_telemetry=enabled,
            plugins=[plugin],
        ) as client:
            await client.request({"path": "/users"})
    on, off = server.received
    assert on.headers["x-trace"] == "on"
    assert "x-trace" not in off.headers
    assert plugin.calls == 1  # the disabled client's transport never called it


@pytest.mark.anyio
async def test_no_trace_context_is_sent_without_a_configured_sdk(
    otel: Telemetry, server: Server
) -> None:
    otel.plugin.configure(tracer_provider=NoOpTracerProvider())
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/users"})
    (received,) = server.received
    assert "traceparent" not in received.headers
    assert otel.spans() == []


@pytest.mark.anyio
async def test_credentials_and_secret_query_values_are_redacted_from_url_full(
    otel: Telemetry, server: Server
) -> None:
    port = closed_port()
    async with Pynector(transport_type="http") as client:
        await client.request({"url": f"{server.url}/x?api_key=s3cret-key-42&page=2"})
        with pytest.raises(ConnectionError):
            await client.request(
                {"url": f"http://alice:pa55word-9@127.0.0.1:{port}/y?token=t0ken-77&sig=abc"}
            )
    ok, failed = otel.spans()
    assert attributes(ok)["url.full"] == f"{server.url}/x?api_key=REDACTED&page=2"
    assert attributes(failed)["url.full"] == (
        f"http://REDACTED:REDACTED@127.0.0.1:{port}/y?token=REDACTED&sig=REDACTED"
    )
    for secret in ("s3cret-key-42", "alice", "pa55word-9", "t0ken-77"):
        assert secret not in otel.everything()


@pytest.mark.anyio
async def test_only_allow_listed_headers_are_recorded(
    otel: Telemetry, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pynector.otel"):
        otel.plugin.configure(
            request_headers=["X-Trace-Me", "Authorization", "content-type"],
            response_headers=["x-request-id", "Set-Cookie"],
        )
    assert [r.getMessage() for r in caplog.records] == [
        "request_headers: not recording authorization: these headers can carry credentials",
        "response_headers: not recording set-cookie: these headers can carry credentials",
    ]
    async with Pynector(
        transport_type="http",
        base_url=server.url,
        headers={"Authorization": "Bearer sk-live-123456", "X-Other": "not listed"},
    ) as client:
        await client.request({"path": "/users", "headers": {"X-Trace-Me": "yes"}, "json": {}})
    (span,) = otel.spans()
    headers = {k: v for k, v in attributes(span).items() if ".header." in k}
    assert headers == {
        "http.request.header.x-trace-me": ("yes",),
        "http.request.header.content-type": ("application/json",),
        "http.response.header.x-request-id": ("r-1",),
    }
    assert "sk-live-123456" not in otel.everything()
    assert "server-cookie-8c1e" not in otel.everything()


@pytest.mark.anyio
async def test_a_trace_context_set_by_the_caller_or_another_plugin_is_kept(
    otel: Telemetry, server: Server
) -> None:
    theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    class Upstream:
        @pynector.hookimpl
        def pynector_headers(self, headers: dict[str, str]) -> None:
            headers["traceparent"] = theirs

    mine = "00-11111111111111111111111111111111-2222222222222222-01"
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/a", "headers": {"traceparent": mine}})
        name = registry.register_plugin(Upstream(), name="upstream-trace")
        try:
            await client.request({"path": "/b"})
        finally:
            registry.unregister_plugin(name)
    assert [r.headers["traceparent"] for r in server.received] == [mine, theirs]
    assert len(otel.spans()) == 2
