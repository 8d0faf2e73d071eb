"""Log records carry the trace and span ids of the span current when they were logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NoOpTracerProvider, format_span_id, format_trace_id

from pynector import Pynector, configure_telemetry
from pynector.errors import TransportError
from pynector.testing import MockTransport

from .conftest import Server, Telemetry


def failing_once() -> Any:
    calls = 0

    def handler(data: Any, **options: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransportError("hiccup", retryable=True)
        return "done"

    return handler


def ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def log_ids(record: ReadableLogRecord) -> tuple[int | None, int | None]:
    return record.log_record.trace_id, record.log_record.span_id


def bodies(records: list[ReadableLogRecord]) -> list[str]:
    return [str(record.log_record.body) for record in records]


@pytest.mark.anyio
async def test_pynector_log_records_carry_their_spans_ids(
    configured: Telemetry,
) -> None:
    otel = configured
    async with Pynector(transport=MockTransport(failing_once())) as client:
        await client.request_with_retry({"q": 1}, retry_delay=0.001)
    first, second, retry = otel.spans()
    records = otel.logs()
    by_body = {str(r.log_record.body).split(" (")[0].split(" in ")[0]: r for r in records}
    assert sorted(by_body) == [
        "attempt 1 failed",
        "pynector.request -> ok",
        "pynector.request failed",
    ], bodies(records)
    # The client's own retry log line is written inside the retry span ...
    assert log_ids(by_body["attempt 1 failed"]) == ids(retry)
    # ... and the plugin's request lines inside each attempt's span.
    assert log_ids(by_body["pynector.request failed"]) == ids(first)
    assert log_ids(by_body["pynector.request -> ok"]) == ids(second)
    assert {r.log_record.severity_number for r in records} == {SeverityNumber.DEBUG}
    assert {r.log_record.severity_text for r in records} == {"DEBUG"}


@pytest.mark.anyio
async def test_log_records_get_otel_fields_for_formatting(
    configured: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    otel = configured
    with caplog.at_level(logging.DEBUG, logger="pynector"):
        async with Pynector(transport=MockTransport(lambda data, **o: "ok")) as client:
            await client.request({"q": 1})
        logging.getLogger("elsewhere").warning("outside any span")
    (span,) = otel.spans()
    (inside,) = [r for r in caplog.records if r.name == "pynector.otel"]
    (outside,) = [r for r in caplog.records if r.name == "elsewhere"]
    trace_id, span_id = ids(span)
    fields = ("otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName")
    assert [getattr(inside, f) for f in fields] == [
        format_trace_id(trace_id),
        format_span_id(span_id),
        True,
        "orders",
    ]
    assert [getattr(outside, f) for f in fields] == ["0", "0", False, "orders"]
    line = logging.Formatter("%(message)s [trace_id=%(otelTraceID)s]").format(inside)
    assert line.endswith(f"[trace_id={format_trace_id(trace_id)}]")


@pytest.mark.anyio
async def test_an_http_request_logs_method_redacted_url_and_status(
    configured: Telemetry, server: Server
) -> None:
    otel = configured
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/users", "params": {"api_key": "k-5511"}})
    (record,) = otel.logs()
    body = str(record.log_record.body)
    assert body.startswith(f"GET {server.url}/users?api_key=REDACTED -> 200 in ")
    assert body.endswith(" ms (attempt 1)")
    assert record.log_record.attributes is not None
    assert record.log_record.attributes["code.function.name"] == "__exit__"


@pytest.mark.anyio
async def test_configuring_twice_adds_one_log_handler(
    configured: Telemetry,
) -> None:
    otel = configured
    configure_telemetry(service_name="orders", log_level="DEBUG")
    otel.exported.logs.clear()
    async with Pynector(transport=MockTransport(lambda data, **o: "ok")) as client:
        await client.request({"q": 1})
    assert len(otel.logs()) == 1


@pytest.mark.anyio
async def test_a_disabled_client_logs_and_traces_nothing(
    configured: Telemetry, server: Server
) -> None:
    otel = configured
    async with Pynector(
        transport_type="http", base_url=server.url, enable_telemetry=False
    ) as client:
        await client.request({"path": "/users"})
        await client.batch_request([({"path": "/users"}, {})] * 2)
    assert otel.spans() == []
    assert otel.logs() == []
    assert all("traceparent" not in r.headers for r in server.received)


@pytest.mark.anyio
async def test_without_an_sdk_debug_logging_still_gets_the_request_lines(
    configured: Telemetry, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    otel = configured
    otel.plugin.configure(tracer_provider=NoOpTracerProvider())
    with caplog.at_level(logging.DEBUG, logger="pynector"):
        async with Pynector(transport_type="http", base_url=server.url) as client:
            await client.request({"path": "/users"})
    (line,) = [r for r in caplog.records if r.name == "pynector.otel"]
    assert line.getMessage().startswith(f"GET {server.url}/users -> 200 in ")
    assert otel.spans() == []
    assert "traceparent" not in server.received[0].headers
