"""pynector-otel: OpenTelemetry for pynector.

Installed, it joins every client through the ``pynector.plugins`` entry point
(``otel = "pynector_otel:plugin"``). With ``enable_telemetry=True`` (the
default) and a tracer provider configured, every request attempt, retry and
batch gets a span (HTTP semantic conventions for the ``http`` transport, GenAI
ones for ``sdk``), outgoing HTTP requests carry the W3C ``traceparent``, and
log records carry trace and span ids::

    from pynector import Pynector, configure_telemetry

    configure_telemetry(service_name="my-service", log_level="INFO")
    async with Pynector(transport_type="http", base_url="https://api.example.com") as client:
        await client.request({"path": "/users"})  # a span named "GET"

Without a tracer provider (or with ``enable_telemetry=False``) every hook
returns at once. See ``docs/telemetry.md``.
"""

from ._plugin import OtelPlugin as OtelPlugin
from ._version import __version__ as __version__

plugin = OtelPlugin()
"""The instance the ``pynector.plugins`` entry point registers; see :meth:`OtelPlugin.configure`."""

__all__ = ["OtelPlugin", "__version__", "plugin"]
