"""Log correlation: trace and span ids on standard-library log records.

Two pieces, both installed by :func:`pynector.configure_telemetry`:

* a log record factory that adds ``otelTraceID``, ``otelSpanID``,
  ``otelTraceSampled`` and ``otelServiceName`` to every record (the names
  OpenTelemetry's logging instrumentation uses), so a format such as
  ``"%(message)s trace_id=%(otelTraceID)s"`` shows them;
* :class:`OTelLogHandler` on the ``pynector`` logger, which hands pynector's
  records to the OpenTelemetry Logs API with the current context, so an
  exported log record carries the trace and span id of the span that was
  current when it was logged. Without a logger provider it does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import (
    Logger,
    LogRecord,
    NoOpLoggerProvider,
    SeverityNumber,
    get_logger_provider,
)

from ._version import __version__

__all__ = ["OTelLogHandler", "install_log_handler", "install_record_factory", "trace_fields"]

_lock = threading.Lock()
_service_name = ""
_factory_installed = False

# Python level (lower bound) -> OpenTelemetry severity.
_SEVERITIES = (
    (logging.CRITICAL, SeverityNumber.FATAL, "FATAL"),
    (logging.ERROR, SeverityNumber.ERROR, "ERROR"),
    (logging.WARNING, SeverityNumber.WARN, "WARN"),
    (logging.INFO, SeverityNumber.INFO, "INFO"),
    (logging.DEBUG, SeverityNumber.DEBUG, "DEBUG"),
)


def trace_fields() -> dict[str, Any]:
    """The current span's ids as the ``otel*`` record attributes (``"0"`` when none)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {
            "otelTraceID": "0",
            "otelSpanID": "0",
            "otelTraceSampled": False,
            "otelServiceName": _service_name,
        }
    return {
        "otelTraceID": trace.format_trace_id(span_context.trace_id),
        "otelSpanID": trace.format_span_id(span_context.span_id),
        "otelTraceSampled": span_context.trace_flags.sampled,
        "otelServiceName": _service_name,
    }


def install_record_factory(service_name: str) -> None:
    """Add the ``otel*`` attributes to every log record created from now on. Idempotent."""
    global _service_name, _factory_installed
    with _lock:
        _service_name = service_name
        if _factory_installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            for name, value in trace_fields().items():
                setattr(record, name, value)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


class OTelLogHandler(logging.Handler):
    """Forwards log records to the OpenTelemetry Logs API, with the current context.

    Attributes carry the code location and, for ``logger.exception``, the
    exception's type and message; never the record's ``extra`` fields, which
    may hold anything.
    """

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._loggers: dict[str, Logger] = {}

    def emit(self, record: logging.LogRecord) -> None:
        provider = get_logger_provider()
        if isinstance(provider, NoOpLoggerProvider):
            return
        try:
            logger = self._loggers.get(record.name)
            if logger is None:
                logger = provider.get_logger(record.name, __version__)
                self._loggers[record.name] = logger
            severity, severity_text = _severity(record.levelno)
            attributes: dict[str, Any] = {
                "code.file.path": record.pathname,
                "code.function.name": record.funcName,
                "code.line.number": record.lineno,
            }
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                attributes["exception.type"] = type(error).__qualname__
                attributes["exception.message"] = str(error)
                attributes["exception.stacktrace"] = "".join(
                    traceback.format_exception(error, chain=False)
                )
            logger.emit(
                LogRecord(
                    timestamp=int(record.created * 1e9),
                    observed_timestamp=time.time_ns(),
                    context=otel_context.get_current(),
                    severity_number=severity,
                    severity_text=severity_text,
                    body=record.getMessage(),
                    attributes=attributes,
                )
            )
        except Exception:
            self.handleError(record)


def _severity(levelno: int) -> tuple[SeverityNumber, str]:
    for level, number, text in _SEVERITIES:
        if levelno >= level:
            return number, text
    return SeverityNumber.TRACE, "TRACE"


def install_log_handler(logger_name: str = "pynector") -> OTelLogHandler:
    """Attach one :class:`OTelLogHandler` to ``logger_name`` (again: the same one)."""
    logger = logging.getLogger(logger_name)
    with _lock:
        for handler in logger.handlers:
            if isinstance(handler, OTelLogHandler):
                return handler
        handler = OTelLogHandler()
        logger.addHandler(handler)
        return handler
