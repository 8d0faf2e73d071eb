"""Metrics through the real OpenTelemetry SDK, read with an in-memory metric reader.

Each test gives the plugin its own ``MeterProvider`` (the global one is never
set in this process: the plugin must stay out of calls without one). The
instrument names come from the semantic-conventions package, the oracle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
)
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_TOKEN_TYPE
from opentelemetry.semconv._incubating.metrics.gen_ai_metrics import (
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_CLIENT_TOKEN_USAGE,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_SCHEME
from opentelemetry.semconv.metrics.http_metrics import HTTP_CLIENT_REQUEST_DURATION
from opentelemetry.semconv.schemas import Schemas
from opentelemetry.trace import NoOpTracerProvider

from pynector import Call, Pynector
from pynector.errors import ServerError
from pynector_otel import OtelPlugin
from pynector_otel._metrics import (
    GENAI_DURATION_BUCKETS,
    GENAI_TOKEN_BUCKETS,
    HTTP_DURATION_BUCKETS,
    SCHEMA_URL,
)

from .conftest import Server, Telemetry
from .test_genai import MESSAGE, SDKLike, anthropic, chat_request


@dataclass
class Metrics:
    reader: InMemoryMetricReader
    provider: MeterProvider

    def all(self) -> dict[str, Metric]:
        data = self.reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "pynector_otel"
                assert scope.schema_url == SCHEMA_URL
                for metric in scope.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str) -> list[Any]:
        metric = self.all().get(name)
        return [] if metric is None else list(metric.data.data_points)

    def histogram(self, name: str) -> list[HistogramDataPoint]:
        points = self.points(name)
        assert all(isinstance(p, HistogramDataPoint) for p in points)
        return points

    def numbers(self, name: str) -> dict[str, float]:
        """Each point's value, keyed by its attributes as JSON."""
        points = self.points(name)
        assert all(isinstance(p, NumberDataPoint) for p in points)
        return {json.dumps(attrs(p), sort_keys=True): p.value for p in points}


@pytest.fixture
def metrics(otel: Telemetry) -> Iterator[Metrics]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    otel.plugin.configure(meter_provider=provider)
    yield Metrics(reader, provider)
    provider.shutdown()


def attrs(point: HistogramDataPoint | NumberDataPoint) -> dict[str, Any]:
    return dict(point.attributes or {})


def key(**attributes: Any) -> str:
    return json.dumps({k.replace("__", "."): v for k, v in attributes.items()}, sort_keys=True)


def test_the_schema_url_is_a_published_semantic_conventions_version() -> None:
    assert SCHEMA_URL in {schema.value for schema in Schemas}


@pytest.mark.anyio
async def test_an_http_request_records_its_duration_in_the_http_conventions(
    otel: Telemetry, metrics: Metrics, server: Server
) -> None:
    port = int(server.url.rpartition(":")[2])
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request({"path": "/users"})
        with pytest.raises(ServerError):
            await client.request({"path": "/status/503", "method": "POST"})
    metric = metrics.all()[HTTP_CLIENT_REQUEST_DURATION]
    assert metric.unit == "s"
    points = sorted(
        metrics.histogram(HTTP_CLIENT_REQUEST_DURATION),
        key=lambda p: attrs(p)[HTTP_RESPONSE_STATUS_CODE],
    )
    assert [attrs(p) for p in points] == [
        {
            HTTP_REQUEST_METHOD: "GET",
            HTTP_RESPONSE_STATUS_CODE: 200,
            SERVER_ADDRESS: "127.0.0.1",
            SERVER_PORT: port,
            "network.protocol.version": "1.1",
            URL_SCHEME: "http",
        },
        {
            HTTP_REQUEST_METHOD: "POST",
            HTTP_RESPONSE_STATUS_CODE: 503,
            ERROR_TYPE: "503",
            SERVER_ADDRESS: "127.0.0.1",
            SERVER_PORT: port,
            "network.protocol.version": "1.1",
            URL_SCHEME: "http",
        },
    ]
    for point in points:
        assert point.count == 1
        assert 0 < point.sum < 30
        assert tuple(point.explicit_bounds) == HTTP_DURATION_BUCKETS


@pytest.mark.anyio
async def test_a_genai_call_records_its_duration_and_tokens_in_the_genai_conventions(
    otel: Telemetry, metrics: Metrics
) -> None:
    async with Pynector(transport=anthropic(MESSAGE)) as client:
        await client.request({**chat_request(), "model": "claude-sonnet-4-5"})
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        SERVER_ADDRESS: "api.anthropic.com",
        SERVER_PORT: 443,
    }
    (duration,) = metrics.histogram(GEN_AI_CLIENT_OPERATION_DURATION)
    assert attrs(duration) == common
    assert tuple(duration.explicit_bounds) == pytest.approx(GENAI_DURATION_BUCKETS)
    assert metrics.all()[GEN_AI_CLIENT_OPERATION_DURATION].unit == "s"
    tokens = {attrs(p)[GEN_AI_TOKEN_TYPE]: p for p in metrics.histogram(GEN_AI_CLIENT_TOKEN_USAGE)}
    assert {kind: (p.count, p.sum) for kind, p in tokens.items()} == {
        "input": (1, 10),
        "output": (1, 4),
    }
    assert attrs(tokens["input"]) == {**common, GEN_AI_TOKEN_TYPE: "input"}
    assert tuple(tokens["input"].explicit_bounds) == GENAI_TOKEN_BUCKETS
    assert metrics.all()[GEN_AI_CLIENT_TOKEN_USAGE].unit == "{token}"
    # No HTTP duration for an SDK call: one operation, one duration.
    assert metrics.points(HTTP_CLIENT_REQUEST_DURATION) == []


@pytest.mark.anyio
async def test_retries_are_counted_by_their_error_type(
    otel: Telemetry, metrics: Metrics, server: Server
) -> None:
    async with Pynector(transport_type="http", base_url=server.url) as client:
        await client.request_with_retry({"path": "/flaky/m1?fail=2"}, max_retries=3, retry_delay=0)
    assert metrics.numbers("pynector.retries") == {
        key(error__type="503", pynector__retry__reason="backoff", pynector__transport="http"): 2
    }
    assert metrics.all()["pynector.retries"].unit == "{retry}"


@pytest.mark.anyio
async def test_batch_requests_are_counted_as_they_end(
    otel: Telemetry, metrics: Metrics, server: Server
) -> None:
    requests = [{"path": "/a"}, {"path": "/status/404"}, {"path": "/b"}]
    async with Pynector(transport_type="http", base_url=server.url) as client:
        results = await client.batch_request([(request, {}) for request in requests])
    assert [isinstance(r, Exception) for r in results] == [False, True, False]
    assert metrics.numbers("pynector.batch.requests") == {
        key(pynector__batch__outcome="succeeded", pynector__transport="http"): 2,
        key(pynector__batch__outcome="failed", pynector__transport="http"): 1,
    }


@pytest.mark.anyio
async def test_a_wait_for_a_concurrency_slot_is_recorded(
    otel: Telemetry, metrics: Metrics, server: Server
) -> None:
    # One connection, two requests at once: the second waits for the first.
    async with Pynector(
        transport_type="http", base_url=server.url, config={"max_connections": 1}
    ) as client:
        await client.request({"path": "/warm"})  # the slots exist from now on
        async with anyio.create_task_group() as group:
            for path in ("/one", "/two"):
                group.start_soon(client.request, {"path": path})
    (point,) = metrics.histogram("pynector.limiter.wait.duration")
    assert attrs(point) == {
        "pynector.limiter": "concurrency",
        "pynector.transport": "http",
    }
    assert point.count == 1
    assert point.sum > 0


@pytest.mark.anyio
async def test_the_rate_limiter_and_token_budget_waits_are_recorded(
    otel: Telemetry, metrics: Metrics
) -> None:
    class Estimated(SDKLike):
        def estimate_tokens(self, call: Call[dict[str, Any]]) -> int:
            return 100

    config = {"rate_limit": "10/s", "token_limit": "100000/m"}
    transport = Estimated("anthropic", MESSAGE, "messages.create")
    async with Pynector(transport=transport, config=config) as client:
        for _ in range(3):
            await client.request({**chat_request(), "model": "claude-sonnet-4-5"})
    points = {
        attrs(p)["pynector.limiter"]: p for p in metrics.histogram("pynector.limiter.wait.duration")
    }
    assert set(points) == {"rate", "token_budget"}
    # Paced at 100 ms: the later starts wait for the limiter.
    assert points["rate"].count == 3
    assert points["rate"].sum > 0.15
    assert points["token_budget"].count == 3
    assert metrics.all()["pynector.limiter.wait.duration"].unit == "s"


@pytest.mark.anyio
async def test_the_adaptive_limit_and_the_breaker_states_are_gauges(
    otel: Telemetry, metrics: Metrics, server: Server
) -> None:
    config = {"adaptive_concurrency": True, "circuit_breaker": {"cooldown": 30}}
    async with Pynector(transport_type="http", base_url=server.url, config=config) as client:
        await client.request({"path": "/users"})
        limit = client.concurrency_limit
        limits = metrics.numbers("pynector.adaptive.limit")
        states = metrics.numbers("pynector.circuit_breaker.state")
    assert limits[key(pynector__limit_key=client.limit_key)] == limit
    breaker = {"pynector.circuit_breaker.key": client.limit_key}
    assert {
        json.loads(k)["pynector.circuit_breaker.state"]: v
        for k, v in states.items()
        if json.loads(k).items() >= breaker.items()
    } == {"closed": 1, "open": 0, "half_open": 0}
    # A closed client has no gauges any more.
    assert key(pynector__limit_key=client.limit_key) not in metrics.numbers(
        "pynector.adaptive.limit"
    )


def test_without_a_meter_or_tracer_provider_the_plugin_stays_out() -> None:
    plugin = OtelPlugin(tracer_provider=NoOpTracerProvider())
    assert not plugin.pynector_telemetry_active()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        plugin.configure(tracer_provider=NoOpTracerProvider(), meter_provider=provider)
        assert plugin.pynector_telemetry_active()
    finally:
        provider.shutdown()
