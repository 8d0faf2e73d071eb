"""Metrics through the OpenTelemetry metrics API: semantic-convention and pynector instruments.

The instruments are made once per meter provider. Without an SDK (no meter
provider set) the plugin makes none and the client leaves it out of its calls,
so metrics cost nothing then. Attributes come from what the transport
reported on the call (``call.attributes``): the plugin keeps, for each
instrument, the attributes its convention lists.

Instruments (docs/telemetry.md has the table):

- ``http.client.request.duration`` (s, histogram), HTTP semantic conventions;
- ``gen_ai.client.operation.duration`` (s, histogram) and
  ``gen_ai.client.token.usage`` ({token}, histogram, ``gen_ai.token.type``),
  GenAI semantic conventions;
- ``pynector.limiter.wait.duration`` (s, histogram, ``pynector.limiter``:
  ``rate``, ``token_budget``, ``concurrency``);
- ``pynector.retries`` ({retry}, counter, ``error.type``, ``pynector.retry.reason``);
- ``pynector.adaptive.limit`` ({request}, gauge, ``pynector.limit_key``);
- ``pynector.circuit_breaker.state`` (1, gauge: 1 for the breaker's current
  state, 0 for the others; ``pynector.circuit_breaker.key``, ``pynector.circuit_breaker.state``);
- ``pynector.batch.requests`` ({request}, counter, ``pynector.batch.outcome``:
  ``succeeded`` or ``failed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from pynector.call import WAIT_CONCURRENCY, WAIT_RATE, WAIT_TOKENS
from pynector.telemetry import limits

from ._version import __version__

__all__ = ["SCHEMA_URL", "Instruments", "no_global_meter_provider"]

SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
"""The semantic conventions version the attributes follow (the tracer's and meter's schema)."""

# The conventions' advice for the bucket boundaries of each histogram.
HTTP_DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
GENAI_DURATION_BUCKETS = tuple(0.01 * 2**i for i in range(14))  # 0.01 ... 81.92
GENAI_TOKEN_BUCKETS = tuple(4**i for i in range(14))  # 1 ... 67108864

# The attributes each convention keeps on its metrics.
_HTTP_KEYS = (
    "http.request.method",
    "http.response.status_code",
    "error.type",
    "server.address",
    "server.port",
    "network.protocol.name",
    "network.protocol.version",
    "url.scheme",
)
_GENAI_KEYS = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "server.address",
    "server.port",
    "error.type",
)
_WAITS = ((WAIT_RATE, "rate"), (WAIT_TOKENS, "token_budget"), (WAIT_CONCURRENCY, "concurrency"))
_BREAKER_STATES = ("closed", "open", "half_open")


_INTERNAL: Any = getattr(metrics, "_internal", None)


def _no_global_meter_provider() -> bool:
    return _INTERNAL._METER_PROVIDER is None


def _unknown() -> bool:
    return False


no_global_meter_provider = (
    _no_global_meter_provider if hasattr(_INTERNAL, "_METER_PROVIDER") else _unknown
)
"""True while no global meter provider has been set.

opentelemetry-api keeps it in ``metrics._internal._METER_PROVIDER`` (``None``
until set); reading that spares ``get_meter_provider()``'s environment lookup
on every call. Should the variable ever go, this answers ``False`` and the
public call decides.
"""


def _pick(attributes: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: attributes[key] for key in keys if key in attributes}


def _adaptive_limits(options: CallbackOptions) -> Iterable[Observation]:
    adaptive, _ = limits()
    return [Observation(limit, {"pynector.limit_key": key}) for key, limit in adaptive]


def _breaker_states(options: CallbackOptions) -> Iterable[Observation]:
    _, breakers = limits()
    return [
        Observation(
            int(state == current),
            {"pynector.circuit_breaker.key": key, "pynector.circuit_breaker.state": state},
        )
        for key, current in breakers
        for state in _BREAKER_STATES
    ]


class Instruments:
    """The plugin's instruments on one meter provider."""

    __slots__ = (
        "batch_requests",
        "genai_duration",
        "genai_tokens",
        "http_duration",
        "limiter_wait",
        "retries",
    )

    def __init__(self, provider: metrics.MeterProvider) -> None:
        meter = provider.get_meter("pynector_otel", __version__, schema_url=SCHEMA_URL)
        self.http_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=HTTP_DURATION_BUCKETS,
        )
        self.genai_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=GENAI_DURATION_BUCKETS,
        )
        self.genai_tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=GENAI_TOKEN_BUCKETS,
        )
        self.limiter_wait = meter.create_histogram(
            "pynector.limiter.wait.duration",
            unit="s",
            description="Time a request attempt waited for one of the client's limits.",
        )
        self.retries = meter.create_counter(
            "pynector.retries",
            unit="{retry}",
            description="Retries the client decided on, by the error that caused them.",
        )
        self.batch_requests = meter.create_counter(
            "pynector.batch.requests",
            unit="{request}",
            description="Requests of batches that ended, by outcome.",
        )
        meter.create_observable_gauge(
            "pynector.adaptive.limit",
            callbacks=[_adaptive_limits],
            unit="{request}",
            description="The current adaptive concurrency limit of each client that has one.",
        )
        meter.create_observable_gauge(
            "pynector.circuit_breaker.state",
            callbacks=[_breaker_states],
            unit="1",
            description="1 for the state each circuit breaker is in, 0 for the other states.",
        )

    def record_attempt(
        self, attributes: Mapping[str, Any], transport: str, seconds: float, error: str | None
    ) -> None:
        """Record one attempt: its duration in its domain's convention, its limiter waits."""
        if error is not None:
            attributes = {**attributes, "error.type": error}
        if "http.request.method" in attributes:
            self.http_duration.record(seconds, _pick(attributes, _HTTP_KEYS))
        elif "gen_ai.operation.name" in attributes:
            picked = _pick(attributes, _GENAI_KEYS)
            self.genai_duration.record(seconds, picked)
            picked.pop("error.type", None)
            for kind in ("input", "output"):
                tokens = attributes.get(f"gen_ai.usage.{kind}_tokens")
                if isinstance(tokens, int):
                    self.genai_tokens.record(tokens, {**picked, "gen_ai.token.type": kind})
        for key, limiter in _WAITS:
            waited = attributes.get(key)
            if waited is not None:
                self.limiter_wait.record(
                    waited, {"pynector.limiter": limiter, "pynector.transport": transport}
                )

    def record_retry(self, transport: str, error_type: str, reason: str) -> None:
        self.retries.add(
            1,
            {
                "error.type": error_type,
                "pynector.retry.reason": reason,
                "pynector.transport": transport,
            },
        )

    def record_batch_request(self, transport: str, failed: bool) -> None:
        self.batch_requests.add(
            1,
            {
                "pynector.batch.outcome": "failed" if failed else "succeeded",
                "pynector.transport": transport,
            },
        )
