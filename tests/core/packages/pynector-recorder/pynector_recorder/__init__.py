"""A plugin module that records every ``pynector_configure_telemetry`` call."""

from __future__ import annotations

from pynector import hookimpl

calls: list[tuple[str, str]] = []


@hookimpl
def pynector_configure_telemetry(service_name: str, log_level: str) -> None:
    """Record the settings."""
    calls.append((service_name, log_level))
