"""``configure_telemetry`` with pynector-otel installed: in fresh interpreters.

OpenTelemetry's global providers can be set once per process, so what
``configure_telemetry`` does to them is checked in subprocesses that load the
plugin through its real entry point; "without the SDK" is a fresh virtual
environment where only pynector-core and pynector-otel are installed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import trace

from pynector import configure_telemetry

from .conftest import Telemetry

ROOT = Path(__file__).resolve().parents[2]

REQUEST = """
import anyio
from pynector import Pynector
from pynector.testing import MockTransport

async def main():
    async with Pynector(transport=MockTransport(lambda data, **o: "ok")) as client:
        await client.request({"q": 1})

anyio.run(main)
"""


def run(*code: str, python: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the code (each part dedented on its own) in a fresh interpreter."""
    clean = {
        k: v for k, v in os.environ.items() if k != "PYNECTOR_PLUGINS" and not k.startswith("OTEL_")
    }
    return subprocess.run(
        [str(python or sys.executable), "-c", "\n".join(textwrap.dedent(part) for part in code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_with_the_sdk_it_sets_a_tracer_provider_naming_the_service_and_no_exporter() -> None:
    result = run(
        """
        import threading
        from opentelemetry import trace
        from pynector import configure_telemetry

        configure_telemetry(service_name="orders", log_level="INFO")
        provider = trace.get_tracer_provider()
        print(type(provider).__module__, type(provider).__name__)
        print(provider.resource.attributes["service.name"])
        with trace.get_tracer("check").start_as_current_span("s") as span:
            print(span.get_span_context().is_valid)
        print(threading.active_count())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == [
        "opentelemetry.sdk.trace TracerProvider",
        "orders",
        "True",
        "1",  # no exporter thread: nothing dials out
    ]


def test_an_exporter_is_started_only_when_asked_for() -> None:
    code = """
        from pynector import configure_telemetry
        configure_telemetry(service_name="orders", log_level="INFO")
    """
    result = run(code, REQUEST, OTEL_TRACES_EXPORTER="console")
    assert result.returncode == 0, result.stderr
    assert '"name": "pynector.request"' in result.stdout
    assert '"service.name": "orders"' in result.stdout


def test_an_exporter_that_is_not_installed_is_a_configuration_error() -> None:
    result = run(
        """
        from pynector import configure_telemetry
        from pynector.errors import ConfigurationError
        try:
            configure_telemetry(service_name="orders")
        except ConfigurationError as exc:
            print(exc)
        """,
        OTEL_TRACES_EXPORTER="zipkin-nope",
    )
    assert result.returncode == 0, result.stderr
    assert "OTEL_TRACES_EXPORTER='zipkin-nope': no exporter named 'zipkin-nope'" in result.stdout
    assert "available: console" in result.stdout
    assert "pip install opentelemetry-exporter-otlp" in result.stdout


@pytest.fixture(scope="session")
def api_only_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with pynector-core and pynector-otel: no OpenTelemetry SDK."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("these tests install pynector-otel with uv; run them with `make test`")
    venv = tmp_path_factory.mktemp("api-only") / "venv"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    packages = [str(ROOT / "pynector-core"), str(ROOT / "pynector-otel")]
    for command in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(python), *packages],
    ):
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return python


def test_without_the_sdk_it_works_and_traces_nothing(api_only_python: Path) -> None:
    result = run(
        """
        import logging
        from opentelemetry import trace
        from pynector import configure_telemetry
        from pynector.registry import available_plugins

        print([(p.name, p.distribution, p.status) for p in available_plugins()])
        configure_telemetry(service_name="orders", log_level="INFO")
        print(type(trace.get_tracer_provider()).__name__)
        record = logging.getLogger("pynector").makeRecord("pynector", 20, "f", 1, "m", (), None)
        print(record.otelTraceID, record.otelServiceName)
        """,
        REQUEST,
        python=api_only_python,
        OTEL_TRACES_EXPORTER="console",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == [
        "[('otel', 'pynector-otel', 'ok')]",
        "ProxyTracerProvider",
        "0 orders",
    ]
    assert "OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed" in result.stderr


def test_the_installed_plugin_traces_requests_through_its_entry_point() -> None:
    result = run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        """,
        REQUEST,
        """
        print([span.name for span in exporter.get_finished_spans()])
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['pynector.request']"


def test_without_a_tracer_provider_the_plugin_steps_aside_until_one_is_set() -> None:
    result = run(
        """
        import logging
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from pynector.registry import hooks
        from pynector_otel import plugin

        print(plugin.pynector_telemetry_active(), hooks())
        logging.getLogger("pynector.otel").setLevel(logging.DEBUG)  # its request lines
        print(plugin.pynector_telemetry_active(), hooks() is not None)
        logging.getLogger("pynector.otel").setLevel(logging.NOTSET)
        print(plugin.pynector_telemetry_active())
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # the program's own, set after the import
        print(plugin.pynector_telemetry_active(), hooks() is not None)
        """,
        REQUEST,
        """
        print([span.name for span in exporter.get_finished_spans()])
        """,
        PYNECTOR_PLUGINS="otel",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "False None",
        "True True",
        "False",
        "True True",
        "['pynector.request']",
    ]


def test_a_tracer_provider_named_by_the_environment_counts_as_configured() -> None:
    result = run(
        """
        from opentelemetry import trace
        from pynector_otel import plugin

        print(plugin.pynector_telemetry_active(), type(trace.get_tracer_provider()).__name__)
        """,
        PYNECTOR_PLUGINS="otel",
        OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True TracerProvider"


def test_a_tracer_provider_set_by_the_program_is_left_alone(
    otel: Telemetry, pynector_logger: logging.Logger
) -> None:
    before = trace.get_tracer_provider()
    configure_telemetry(service_name="another-name", log_level="WARNING")
    assert trace.get_tracer_provider() is before is otel.exported.provider


@pytest.mark.parametrize("value", ["", "none"])
def test_no_exporter_variable_means_no_exporter(value: str) -> None:
    result = run(
        """
        import threading
        from pynector import configure_telemetry
        configure_telemetry(service_name="orders")
        print(threading.active_count())
        """,
        OTEL_TRACES_EXPORTER=value,
        OTEL_LOGS_EXPORTER=value,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
