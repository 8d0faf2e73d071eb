"""OpenTelemetry spans and trace-correlated logs for requests, retries and batches.

    uv run python examples/telemetry.py [--backend trio]

Needs ``pynector[observability]`` and ``opentelemetry-sdk``. Spans go to an
in-memory exporter and are printed as a tree; pynector's log lines carry the
trace id of the span they were written in. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import logging
import sys

import anyio
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pynector import Pynector, configure_telemetry
from pynector.cli._demo_server import DemoServer

SHOWN = (
    "http.request.method",
    "http.response.status_code",
    "pynector.attempt",
    "pynector.batch.index",
    "pynector.retry.reason",
    "pynector.batch.succeeded",
    "pynector.retry.attempts",
    "error.type",
)


def print_tree(spans: list[ReadableSpan]) -> None:
    """Print spans as a tree, children in the order they started."""
    children: dict[int | None, list[ReadableSpan]] = {}
    ids = {span.context.span_id for span in spans if span.context is not None}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)

    def show(span: ReadableSpan, depth: int) -> None:
        attributes = span.attributes or {}
        details = " ".join(f"{key}={attributes[key]!s}" for key in SHOWN if key in attributes)
        print(f"{'  ' * depth}{span.name} [{span.kind.name}] {details}".rstrip())
        if span.context is not None:
            for child in children.get(span.context.span_id, []):
                show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 0)


async def main(base_url: str) -> None:
    async with Pynector(transport_type="http", base_url=base_url) as client:
        await client.request({"path": "/users/1"})
        await client.request_with_retry({"path": "/flaky/traced"}, retry_delay=0.1)
        await client.batch_request([({"path": f"/users/{n}"}, {}) for n in (1, 2, 3)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "examples"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # configure_telemetry keeps a provider you set
    logging.basicConfig(
        stream=sys.stdout, format="log: %(name)s trace_id=%(otelTraceID)s %(message)s"
    )
    configure_telemetry(service_name="examples", log_level="DEBUG")

    with DemoServer() as server:
        anyio.run(main, server.url, backend=args.backend)
    print("spans:")
    print_tree(list(exporter.get_finished_spans()))
