"""What ``configure_telemetry(service_name, log_level)`` does when pynector-otel is installed.

* Log correlation, always: every log record gets ``otelTraceID`` /
  ``otelSpanID`` (see :mod:`._logs`) and pynector's records reach the
  OpenTelemetry Logs API with their span.
* Tracing, only with the OpenTelemetry SDK installed and no tracer provider set
  yet: a ``TracerProvider`` whose resource names the service. Spans then have
  real ids (shown in logs and sent as ``traceparent``) but go nowhere until an
  exporter is asked for: ``OTEL_TRACES_EXPORTER`` (``console``, ``otlp``, ...:
  any ``opentelemetry_traces_exporter`` entry point that is installed), or a
  span processor the program adds itself. Unset or ``none``: no exporter, so
  nothing dials out. ``OTEL_LOGS_EXPORTER`` does the same for a
  ``LoggerProvider``.
* A provider the program set up itself is never replaced.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import trace

from ._logs import install_log_handler, install_record_factory

__all__ = ["configure"]

_log = logging.getLogger("pynector.otel")


def configure(service_name: str, log_level: str) -> None:
    """Set up log correlation and, when possible, an SDK tracer provider."""
    install_record_factory(service_name)
    install_log_handler("pynector")
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    except ImportError:
        _log.debug(
            "opentelemetry-sdk is not installed: pynector's spans are not recorded. "
            "Install it (pip install opentelemetry-sdk) or set up a tracer provider."
        )
        for variable in ("OTEL_TRACES_EXPORTER", "OTEL_LOGS_EXPORTER"):
            if _requested(variable):
                _log.warning(
                    "%s is set but opentelemetry-sdk is not installed, so nothing is "
                    "exported; install it: pip install opentelemetry-sdk",
                    variable,
                )
        return
    resource = Resource.create({SERVICE_NAME: service_name})
    _configure_traces(resource)
    _configure_logs(resource)


def _requested(variable: str) -> list[str]:
    """The exporter names an ``OTEL_*_EXPORTER`` variable asks for (none by default)."""
    raw = os.environ.get(variable, "")
    return [name.strip() for name in raw.split(",") if name.strip() and name.strip() != "none"]


def _exporters(variable: str, group: str) -> list[Any]:
    """Instantiate the exporters ``variable`` names, from their entry points."""
    from pynector.errors import ConfigurationError

    exporters = []
    for name in _requested(variable):
        found = entry_points(group=group, name=name)
        if not found:
            available = sorted(ep.name for ep in entry_points(group=group)) or ["none installed"]
            raise ConfigurationError(
                f"{variable}={os.environ[variable]!r}: no exporter named {name!r} is installed "
                f"(available: {', '.join(available)}). Install one, e.g. "
                "pip install opentelemetry-exporter-otlp, or unset the variable."
            )
        exporters.append(next(iter(found)).load()())
    return exporters


def _configure_traces(resource: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        _log.debug("a tracer provider is already set (%s); leaving it", type(current).__name__)
        return
    provider = TracerProvider(resource=resource)
    for exporter in _exporters("OTEL_TRACES_EXPORTER", "opentelemetry_traces_exporter"):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def _configure_logs(resource: Any) -> None:
    if not _requested("OTEL_LOGS_EXPORTER"):
        return
    from opentelemetry._logs import get_logger_provider, set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    current = get_logger_provider()
    if isinstance(current, LoggerProvider):
        _log.debug("a logger provider is already set; leaving it")
        return
    provider = LoggerProvider(resource=resource)
    for exporter in _exporters("OTEL_LOGS_EXPORTER", "opentelemetry_logs_exporter"):
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    set_logger_provider(provider)
