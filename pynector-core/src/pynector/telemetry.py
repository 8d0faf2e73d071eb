"""Telemetry facade: a no-op until a telemetry plugin is installed.

:func:`configure_telemetry` sets up standard-library logging for pynector and
hands the settings to every installed plugin (``pynector-otel`` configures
OpenTelemetry from them). It never starts an exporter that dials out.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["configure_telemetry", "limits"]

LIVE_CLIENTS: weakref.WeakSet[Any] = weakref.WeakSet()
"""Open clients with an adaptive limit or circuit breakers, for :func:`limits`."""


def limits() -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """The adaptive limits and circuit breaker states of this process's live clients.

    For metric callbacks (pynector-otel's ``pynector.adaptive.limit`` and
    ``pynector.circuit_breaker.state`` gauges): read when a metric reader
    collects, never on a request.

    Returns:
        ``([(limit_key, limit), ...], [(breaker_key, state), ...])``: the
        adaptive limit of each client that has one, keyed by the client's
        ``limit_key``, and each breaker's state (``"closed"``, ``"open"``,
        ``"half_open"``) as this process sees it (a shared breaker: its local
        stand-in's view when the store is down, else the last state known here).
    """
    adaptive: list[tuple[str, int]] = []
    breakers: list[tuple[str, str]] = []
    for client in list(LIVE_CLIENTS):
        if getattr(client, "_closed", False):
            continue
        limiter = getattr(client, "_adaptive", None)
        if limiter is not None:
            adaptive.append((client.limit_key, limiter.limit))
        for key, breaker in dict(getattr(client, "_breakers", None) or {}).items():
            state = getattr(breaker, "state", None)
            if state is None:
                state = getattr(getattr(breaker, "local", None), "state", None)
            if isinstance(state, str):
                breakers.append((key, state))
    return adaptive, breakers


_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")


def configure_telemetry(service_name: str = "pynector", log_level: str = "INFO") -> None:
    """Configure pynector's logging and any installed telemetry plugin.

    Args:
        service_name: The name this process reports in traces and logs.
        log_level: A standard logging level name for the ``pynector`` logger.

    Raises:
        ConfigurationError: If ``log_level`` is not a logging level name or
            ``service_name`` is empty.
    """
    import logging

    from .errors import ConfigurationError

    level = str(log_level).upper()
    if level not in _LEVELS:
        raise ConfigurationError(
            f"configure_telemetry(log_level={log_level!r}) is not a logging level; "
            f"use one of {', '.join(_LEVELS)}"
        )
    if not isinstance(service_name, str) or not service_name:
        raise ConfigurationError(
            f"configure_telemetry(service_name={service_name!r}) must be a non-empty string, "
            "e.g. configure_telemetry(service_name='my-service')"
        )
    logger = logging.getLogger("pynector")
    logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)

    from ._plugins import relay

    plugins = relay()  # every plugin: configuring is what makes one active
    if plugins is not None:
        plugins.pynector_configure_telemetry(service_name=service_name, log_level=level)
