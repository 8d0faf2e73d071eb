"""No double spans: OpenTelemetry's own instrumentations add nothing under pynector's span.

The aiohttp client instrumentation and the official OpenAI instrumentation
(``opentelemetry-instrumentation-genai-openai``, the successor of
``-openai-v2``) are installed (dev dependencies) and enabled for each test
against the session's tracer provider. Each test first shows the instrumentation at work on a call
pynector does not trace, so that "one span" proves the suppression.
(``opentelemetry-instrumentation-httpx`` has nothing to instrument here: the
engines and the SDKs use httpx2.)
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
from opentelemetry.trace import SpanKind

from pynector import Pynector

from .conftest import LLM_REPLIES, Server, Telemetry, traceparent_of


@pytest.fixture
def aiohttp_instrumented(otel: Telemetry) -> Iterator[None]:
    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.exported.provider)
    yield
    instrumentor.uninstrument()


@pytest.fixture
def openai_instrumented(otel: Telemetry) -> Iterator[None]:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=otel.exported.provider)
    yield
    instrumentor.uninstrument()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiohttp runs on asyncio only
async def test_the_aiohttp_instrumentation_adds_no_span_under_pynectors(
    otel: Telemetry, server: Server, aiohttp_instrumented: None
) -> None:
    # Without pynector's span, the instrumentation records the request itself.
    async with Pynector(
        transport_type="http", base_url=server.url, engine="aiohttp", enable_telemetry=False
    ) as client:
        await client.request({"path": "/plain"})
    (theirs,) = otel.spans()
    assert theirs.instrumentation_scope is not None
    assert theirs.instrumentation_scope.name.startswith("opentelemetry.instrumentation.aiohttp")
    otel.exported.spans.clear()
    server.reset()

    async with Pynector(transport_type="http", base_url=server.url, engine="aiohttp") as client:
        await client.request({"path": "/traced"})
    (span,) = otel.spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "pynector_otel"
    assert span.kind is SpanKind.CLIENT
    (received,) = server.received
    assert received.headers["traceparent"] == traceparent_of(span)


@pytest.mark.anyio
async def test_the_openai_instrumentation_adds_no_span_under_pynectors(
    otel: Telemetry, server: Server, openai_instrumented: None
) -> None:
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    sdk = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0)
    async with sdk:
        await sdk.chat.completions.create(**request)  # type: ignore[call-overload]
    (theirs,) = otel.spans()
    assert theirs.instrumentation_scope is not None
    assert theirs.instrumentation_scope.name == "opentelemetry.instrumentation.genai.openai"
    otel.exported.spans.clear()
    server.reset()

    async with Pynector(
        transport_type="sdk", provider="openai", base_url=f"{server.url}/v1", api_key="sk-test"
    ) as client:
        reply = await client.request(request)
    assert reply.id == LLM_REPLIES["completions"]["id"]
    (span,) = otel.spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "pynector_otel"
    assert span.name == "chat gpt-4o-mini"
    (received,) = server.received
    assert received.headers["traceparent"] == traceparent_of(span)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiohttp runs on asyncio only
async def test_outside_pynectors_span_the_instrumentations_work_as_before(
    otel: Telemetry, server: Server, aiohttp_instrumented: None
) -> None:
    # The suppression lasts for the attempt only: a request the program sends
    # itself afterwards in the same task is recorded by the instrumentation.
    import aiohttp

    async with Pynector(transport_type="http", base_url=server.url, engine="aiohttp") as client:
        await client.request({"path": "/traced"})
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/own") as reply:
        await reply.read()
    names = sorted(
        span.instrumentation_scope.name.split(".")[0]
        for span in otel.spans()
        if span.instrumentation_scope is not None
    )
    assert names == ["opentelemetry", "pynector_otel"]
