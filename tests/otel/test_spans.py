"""Spans for requests, retries and batches, through any transport (MockTransport here)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from pynector import Pynector
from pynector.errors import RateLimitError, TimeoutError, TransportError
from pynector.testing import MockTransport

from .conftest import Telemetry


def ok(data: Any, **options: Any) -> dict[str, Any]:
    return {"echo": data}


def flaky(failures: int, error: Any = None) -> Any:
    """A handler that fails ``failures`` times (retryably), then echoes."""
    calls = 0

    def handler(data: Any, **options: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls <= failures:
            raise error or TransportError("upstream hiccup", retryable=True)
        return {"echo": data, "calls": calls}

    return handler


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


@pytest.mark.anyio
async def test_a_request_gets_one_client_span(otel: Telemetry) -> None:
    async with Pynector(transport=MockTransport(ok)) as client:
        assert await client.request({"q": 1}) == {"echo": {"q": 1}}
    (span,) = otel.spans()
    assert span.name == "pynector.request"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {"pynector.transport": "custom", "pynector.attempt": 1}
    assert span.parent is None
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "pynector_otel"


@pytest.mark.anyio
async def test_a_failed_request_marks_its_span_with_the_error(otel: Telemetry) -> None:
    async with Pynector(transport=MockTransport(flaky(1))) as client:
        with pytest.raises(TransportError, match="upstream hiccup"):
            await client.request({"q": 1})
    (span,) = otel.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "upstream hiccup"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "pynector.errors.TransportError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "pynector.errors.TransportError"
    assert event.attributes["exception.message"] == "upstream hiccup"
    assert "in handler" in str(event.attributes["exception.stacktrace"])


@pytest.mark.anyio
async def test_a_request_past_its_deadline_records_a_timeout(otel: Telemetry) -> None:
    async def slow(data: Any, **options: Any) -> None:
        await anyio.sleep(10)

    async with Pynector(transport=MockTransport(slow)) as client:
        with pytest.raises(TimeoutError):
            await client.request({"q": 1}, timeout=0.01)
    (span,) = otel.spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "pynector.errors.TimeoutError"
    assert span.status.status_code is StatusCode.ERROR


@pytest.mark.anyio
async def test_retry_attempts_are_children_of_one_retry_span(otel: Telemetry) -> None:
    async with Pynector(transport=MockTransport(flaky(2))) as client:
        reply = await client.request_with_retry({"q": 1}, max_retries=3, retry_delay=0.001)
    assert reply["calls"] == 3
    *attempts, retry = otel.spans()
    assert retry.name == "pynector.retry"
    assert retry.kind is SpanKind.INTERNAL
    assert retry.status.status_code is StatusCode.UNSET
    assert retry.attributes is not None
    assert retry.attributes["pynector.retry.max_retries"] == 3
    assert retry.attributes["pynector.retry.attempts"] == 3
    assert [a.attributes["pynector.attempt"] for a in attempts if a.attributes] == [1, 2, 3]
    for attempt in attempts:
        assert parent_id(attempt) == span_id(retry)
        assert trace_id(attempt) == trace_id(retry)
    assert [a.status.status_code for a in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]


@pytest.mark.anyio
async def test_each_retry_records_the_wait_chosen_and_why(otel: Telemetry) -> None:
    async with Pynector(transport=MockTransport(flaky(2))) as client:
        await client.request_with_retry({"q": 1}, max_retries=3, retry_delay=0.001)
    first, second, third, retry = otel.spans()
    assert first.attributes is not None
    assert "pynector.retry.delay" not in first.attributes
    waits = [e for e in retry.events if e.name == "pynector.retry.wait"]
    assert [e.attributes["pynector.attempt"] for e in waits if e.attributes] == [1, 2]
    for event, attempt in zip(waits, (second, third), strict=True):
        assert event.attributes is not None
        assert attempt.attributes is not None
        assert event.attributes["pynector.retry.reason"] == "backoff"
        assert event.attributes["error.type"] == "pynector.errors.TransportError"
        delay = event.attributes["pynector.retry.delay"]
        assert isinstance(delay, float)
        assert 0 <= delay <= 0.002
        assert attempt.attributes["pynector.retry.delay"] == delay
        assert attempt.attributes["pynector.retry.reason"] == "backoff"


@pytest.mark.anyio
async def test_a_server_chosen_wait_is_recorded_as_retry_after(otel: Telemetry) -> None:
    error = RateLimitError("slow down", status_code=429, retryable=True, retry_after=0.01)
    async with Pynector(transport=MockTransport(flaky(1, error))) as client:
        await client.request_with_retry({"q": 1}, max_retries=1, retry_delay=5)
    _first, second, retry = otel.spans()
    (wait,) = retry.events
    assert wait.attributes is not None
    assert wait.attributes["pynector.retry.reason"] == "retry-after"
    assert wait.attributes["pynector.retry.delay"] == 0.01
    assert wait.attributes["error.type"] == "pynector.errors.RateLimitError"
    assert second.attributes is not None
    assert second.attributes["pynector.retry.reason"] == "retry-after"


@pytest.mark.anyio
async def test_a_retry_that_gives_up_marks_the_retry_span_failed(otel: Telemetry) -> None:
    async with Pynector(transport=MockTransport(flaky(5))) as client:
        with pytest.raises(TransportError):
            await client.request_with_retry({"q": 1}, max_retries=1, retry_delay=0.001)
    *attempts, retry = otel.spans()
    assert len(attempts) == 2
    assert retry.status.status_code is StatusCode.ERROR
    assert retry.attributes is not None
    assert retry.attributes["error.type"] == "pynector.errors.TransportError"
    assert retry.attributes["pynector.retry.attempts"] == 2


@pytest.mark.anyio
async def test_a_batch_span_is_the_parent_of_its_requests(otel: Telemetry) -> None:
    def handler(data: Any, **options: Any) -> Any:
        if data == {"n": 2}:
            raise TransportError("not this one")
        return data

    requests: list[tuple[Any, dict[str, Any]]] = [({"n": n}, {}) for n in range(4)]
    async with Pynector(transport=MockTransport(handler)) as client:
        results = await client.batch_request(requests, max_concurrency=2, timeout=30)
    assert isinstance(results[2], TransportError)
    batch = otel.span("pynector.batch")
    requests_spans = [s for s in otel.spans() if s.name == "pynector.request"]
    assert len(requests_spans) == 4
    assert {parent_id(s) for s in requests_spans} == {span_id(batch)}
    assert {trace_id(s) for s in requests_spans} == {trace_id(batch)}
    indexes = {s.attributes["pynector.batch.index"] for s in requests_spans if s.attributes}
    assert indexes == {0, 1, 2, 3}
    assert batch.kind is SpanKind.INTERNAL
    assert dict(batch.attributes or {}) == {
        "pynector.transport": "custom",
        "pynector.batch.size": 4,
        "pynector.batch.max_concurrency": 2,
        "pynector.batch.timeout": 30,
        "pynector.batch.total": 4,
        "pynector.batch.succeeded": 3,
        "pynector.batch.failed": 1,
    }
    # A failed member does not fail the batch (raise_on_error=False).
    assert batch.status.status_code is StatusCode.UNSET


@pytest.mark.anyio
async def test_a_streamed_batch_span_is_the_parent_of_its_requests(otel: Telemetry) -> None:
    requests: list[tuple[Any, dict[str, Any]]] = [({"n": n}, {}) for n in range(3)]
    async with Pynector(transport=MockTransport(lambda data, **options: data)) as client:
        async with client.batch(requests, max_concurrency=2) as results:
            assert sorted([result.index async for result in results]) == [0, 1, 2]
    batch = otel.span("pynector.batch")
    requests_spans = [s for s in otel.spans() if s.name == "pynector.request"]
    assert len(requests_spans) == 3
    assert {parent_id(s) for s in requests_spans} == {span_id(batch)}
    assert (batch.attributes or {})["pynector.batch.succeeded"] == 3


@pytest.mark.anyio
async def test_retries_inside_a_batch_nest_under_the_batch(otel: Telemetry) -> None:
    async with Pynector(transport=MockTransport(flaky(1))) as client:
        results = await client.batch_request([({"n": 1}, {})], max_retries=2, raise_on_error=True)
    assert results[0]["calls"] == 2
    first, second, batch = otel.spans()
    assert parent_id(first) == parent_id(second) == span_id(batch)
    assert first.attributes is not None
    assert second.attributes is not None
    assert (first.attributes["pynector.attempt"], second.attributes["pynector.attempt"]) == (1, 2)
    assert second.attributes["pynector.batch.index"] == 0
    assert second.attributes["pynector.retry.reason"] == "backoff"
    assert [e.name for e in batch.events] == ["pynector.retry.wait"]


@pytest.mark.anyio
async def test_a_batch_that_raises_marks_its_span_failed(otel: Telemetry) -> None:
    others_waiting = 0
    both_waiting = anyio.Event()

    async def handler(data: Any, **options: Any) -> Any:
        nonlocal others_waiting
        if data == 0:
            await both_waiting.wait()
            raise TransportError("first fails")
        others_waiting += 1
        if others_waiting == 2:
            both_waiting.set()
        await anyio.sleep(10)

    async with Pynector(transport=MockTransport(handler)) as client:
        with pytest.raises(TransportError, match="first fails"):
            await client.batch_request([(n, {}) for n in range(3)], raise_on_error=True)
    batch = otel.span("pynector.batch")
    assert batch.status.status_code is StatusCode.ERROR
    assert batch.attributes is not None
    assert batch.attributes["error.type"] == "pynector.errors.TransportError"
    cancelled = [
        s for s in otel.spans() if s.attributes and s.attributes.get("error.type") == "cancelled"
    ]
    assert len(cancelled) == 2
    assert all(parent_id(s) == span_id(batch) for s in cancelled)


@pytest.mark.anyio
async def test_request_spans_join_the_callers_trace(otel: Telemetry) -> None:
    tracer = otel.exported.provider.get_tracer("the-application")
    with tracer.start_as_current_span("handle order") as outer:
        async with Pynector(transport=MockTransport(ok)) as client:
            await client.request({"q": 1})
    request, application = otel.spans()
    assert application.name == "handle order"
    assert parent_id(request) == outer.get_span_context().span_id
    assert trace_id(request) == outer.get_span_context().trace_id


@pytest.mark.anyio
async def test_a_stream_gets_one_span_for_the_whole_block(otel: Telemetry) -> None:
    async with Pynector(transport=MockTransport(lambda data, **o: [b"a", b"b"])) as client:
        async with client.stream({"q": 1}) as items:
            assert [item async for item in items] == [b"a", b"b"]
            assert otel.spans() == []  # still open while the block runs
    (span,) = otel.spans()
    assert span.attributes is not None
    assert span.attributes["pynector.stream"] is True
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.anyio
async def test_nothing_is_emitted_when_telemetry_is_disabled(otel: Telemetry) -> None:
    async with Pynector(transport=MockTransport(flaky(1)), enable_telemetry=False) as client:
        await client.request_with_retry({"q": 1}, retry_delay=0.001)
        await client.request({"q": 2})
        await client.batch_request([({"n": n}, {}) for n in range(3)], max_retries=1)
        async with client.stream({"q": 1}) as items:
            assert [item async for item in items]
    assert otel.spans() == []
    assert otel.logs() == []


@pytest.fixture
def no_sdk(otel: Telemetry) -> Telemetry:
    """The test's plugin with the OpenTelemetry API's no-op provider: no SDK configured."""
    otel.plugin.configure(tracer_provider=NoOpTracerProvider())
    return otel


@pytest.mark.anyio
async def test_without_a_configured_sdk_the_hooks_step_aside(no_sdk: Telemetry) -> None:
    from pynector.hookspecs import BatchInfo, RequestInfo, RetryInfo

    plugin = no_sdk.plugin
    assert plugin.pynector_request(info=RequestInfo({}, transport_type="custom")) is None
    assert plugin.pynector_retry(info=RetryInfo("custom", {}, 3)) is None
    assert plugin.pynector_batch(info=BatchInfo("custom", 1, 1, None)) is None
    async with Pynector(transport=MockTransport(flaky(1))) as client:
        await client.request_with_retry({"q": 1}, retry_delay=0.001)
    assert no_sdk.spans() == []
