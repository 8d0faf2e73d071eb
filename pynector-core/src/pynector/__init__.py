"""pynector: an async connector framework.

One small client, :class:`Pynector`, sends requests through a pluggable
transport and adds deadlines, retries, bounded-concurrency batches, rate limits
and tracing. Transports and plugins are discovered through entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._client import Pynector as Pynector
from ._version import __version__ as __version__
from .call import Call as Call
from .call import Usage as Usage
from .errors import ConfigurationError as ConfigurationError
from .errors import PynectorError as PynectorError
from .errors import ResponseTooLargeError as ResponseTooLargeError
from .errors import TimeoutError as TimeoutError
from .errors import TransportError as TransportError
from .telemetry import configure_telemetry as configure_telemetry

if TYPE_CHECKING:
    from ._batch import BatchResult as BatchResult
    from .hookspecs import hookimpl as hookimpl

__all__ = [
    "BatchResult",
    "Call",
    "ConfigurationError",
    "Pynector",
    "PynectorError",
    "ResponseTooLargeError",
    "TimeoutError",
    "TransportError",
    "Usage",
    "__version__",
    "configure_telemetry",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    # pluggy is only imported when a plugin author asks for the marker; the batch
    # module with the first batch (or a program that names BatchResult).
    if name == "hookimpl":
        from .hookspecs import hookimpl

        return hookimpl
    if name == "BatchResult":
        from ._batch import BatchResult

        return BatchResult
    raise AttributeError(f"module 'pynector' has no attribute {name!r}")
