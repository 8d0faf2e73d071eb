"""Telemetry overhead per request: pynector-otel installed and enabled or not.

Scenarios, each a client sending requests one after another:

* no plugin: the baseline (``PYNECTOR_PLUGINS=""``, nothing registered);
* any plugin whose hooks return ``None``: what the client's hook machinery
  costs by itself, whatever the plugin does;
* pynector-otel, ``enable_telemetry=False`` (target <= 1.02x the baseline);
* pynector-otel, enabled, no OpenTelemetry SDK configured: spans and metrics
  on, neither a tracer nor a meter provider set (target <= 1.05x; on the
  aiohttp path also printed as a ratio to ``enable_telemetry=False``);
* pynector-otel, enabled, the SDK's ``MeterProvider`` with an in-memory
  metric reader only (metrics recorded, no spans), then also a tracer provider
  with a ``SimpleSpanProcessor`` and an in-memory exporter (printed). Global
  providers can be set once per process, so these run last, against a
  baseline measured after each was set.

Two transports: ``MockTransport`` (the client's own cost alone, where any
fixed cost shows most) and the ``http`` transport to a keep-alive loopback
server in another process (a real request). The figure is the client's CPU
time per request (``time.process_time``); rounds alternate between the
scenarios, each round starting at another one, and the median round counts.

    uv run python benchmarks/bench_telemetry.py                 # default size
    uv run python benchmarks/bench_telemetry.py --quick         # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from _loopback import started

import pynector

# -- the scenarios --------------------------------------------------------------------


class NullPlugin:
    """A plugin whose wrapping hook returns ``None``."""

    @pynector.hookimpl
    def pynector_request(self, info: Any) -> None:
        return None


def make_client(transport: str, url: str, telemetry: bool) -> Any:
    from pynector import Pynector
    from pynector.testing import MockTransport

    if transport == "mock":
        reply = {"ok": True}
        return Pynector(
            transport=MockTransport(lambda data, **options: reply, record=False),
            enable_telemetry=telemetry,
        )
    return Pynector(transport_type="http", base_url=url, enable_telemetry=telemetry)


def cpu_per_request(transport: str, url: str, telemetry: bool, n: int) -> float:
    """Client CPU seconds per request over ``n`` sequential requests (after a warm-up)."""
    data = {"n": 1} if transport == "mock" else {"path": "/items/1"}

    async def run() -> float:
        async with make_client(transport, url, telemetry) as client:
            for _ in range(min(n // 10, 500)):
                await client.request(data)
            start = time.process_time()
            for _ in range(n):
                await client.request(data)
            return (time.process_time() - start) / n

    return asyncio.run(run())


def with_plugin(plugin: object | None, transport: str, url: str, telemetry: bool, n: int) -> float:
    """:func:`cpu_per_request` with ``plugin`` registered (``None``: no plugin)."""
    from pynector import registry

    if plugin is None:
        return cpu_per_request(transport, url, telemetry, n)
    name = registry.register_plugin(plugin, name="bench-plugin")
    try:
        return cpu_per_request(transport, url, telemetry, n)
    finally:
        registry.unregister_plugin(name)


def rounds(
    scenarios: Mapping[str, tuple[object | None, bool]],
    transport: str,
    url: str,
    n: int,
    count: int,
    between: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """Median CPU microseconds per request of each scenario, rounds alternating."""
    samples: dict[str, list[float]] = {label: [] for label in scenarios}
    labels = list(scenarios)
    for number in range(count):
        # Each round starts at another scenario, so none always runs first or last.
        for label in labels[number % len(labels) :] + labels[: number % len(labels)]:
            plugin, telemetry = scenarios[label]
            gc.collect()
            figure = with_plugin(plugin, transport, url, telemetry, n)
            samples[label].append(figure * 1e6)
            between()
    return {label: statistics.median(values) for label, values in samples.items()}


def report(title: str, figures: dict[str, float], targets: dict[str, str]) -> None:
    print(f"\n### {title}")
    print(f"{'scenario':<48}{'CPU us/request':>15}{'ratio':>9}")
    baseline = next(iter(figures.values()))
    for label, value in figures.items():
        target = f"   (target {targets[label]})" if label in targets else ""
        print(f"{label:<48}{value:>15.2f}{value / baseline:>8.3f}x{target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--mock-n", type=int, default=20_000)
    parser.add_argument("--http-n", type=int, default=2_000)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.mock_n, args.http_n = 3, 5_000, 500
    os.environ["PYNECTOR_PLUGINS"] = ""  # installed plugins stay out; scenarios register theirs

    import pynector_otel

    otel = pynector_otel.plugin
    before = {
        "no plugin (baseline)": (None, True),
        "any plugin, hooks return None": (NullPlugin(), True),
        "otel installed, enable_telemetry=False": (otel, False),
        "otel, enabled, no SDK configured": (otel, True),
    }
    targets = {
        "otel installed, enable_telemetry=False": "<= 1.02x",
        "otel, enabled, no SDK configured": "<= 1.05x",
    }
    with started() as url:
        print(
            f"## Telemetry: client CPU per request, median of {args.rounds} rounds, asyncio, "
            f"Python {sys.version.split()[0]}"
        )
        mock = rounds(before, "mock", url, args.mock_n, args.rounds)
        http = rounds(before, "http", url, args.http_n, args.rounds)

        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        otel.configure()  # forgets that it found no meter provider

        def collect() -> None:
            reader.get_metrics_data()  # what an exporter's periodic read would do

        metered = {
            "no plugin (baseline, meter provider set)": (None, True),
            "otel, enabled, SDK metrics + in-memory reader": (otel, True),
        }
        mock_metrics = rounds(metered, "mock", url, args.mock_n, args.rounds, collect)
        http_metrics = rounds(metered, "http", url, args.http_n, args.rounds, collect)

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        otel.configure()
        after = {
            "no plugin (baseline, SDK set)": (None, True),
            "otel, enabled, SDK spans + metrics, in-memory": (otel, True),
        }

        def clear() -> None:
            exporter.clear()
            collect()

        mock_sdk = rounds(after, "mock", url, args.mock_n, args.rounds, clear)
        http_sdk = rounds(after, "http", url, args.http_n, args.rounds, clear)

    report(f"MockTransport, {args.mock_n:,} requests per round", mock, targets)
    report("MockTransport, with an SDK meter provider", mock_metrics, {})
    report("MockTransport, with the SDK's tracer and meter providers", mock_sdk, {})
    report(
        f"http transport (aiohttp) to a loopback server, {args.http_n:,} per round",
        http,
        targets,
    )
    off = http["otel installed, enable_telemetry=False"]
    on = http["otel, enabled, no SDK configured"]
    print(
        f"metrics and spans on, no SDK / telemetry off (aiohttp path): {on / off:.3f}x "
        "(target <= 1.05x)"
    )
    report("http transport, with an SDK meter provider", http_metrics, {})
    report("http transport, with the SDK's tracer and meter providers", http_sdk, {})


if __name__ == "__main__":
    main()
