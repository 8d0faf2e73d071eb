"""pynector-otel: the OpenTelemetry plugin for pynector (under construction)."""
