"""A second distribution that claims names pynector-echo and pynector-recorder already use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pynector import hookimpl
from pynector.transport.protocol import Transport


class EchoTransport(Transport):
    """Answers with the last request, like pynector-echo."""

    def __init__(self) -> None:
        self._last: Any = None

    async def connect(self) -> None:
        """Nothing to open."""

    async def disconnect(self) -> None:
        """Nothing to close."""

    async def send(self, data: Any, **options: Any) -> None:
        """Keep the request."""
        self._last = data

    async def receive(self) -> AsyncIterator[Any]:
        """Yield the last request."""
        yield self._last


class Recorder:
    """A plugin object named like pynector-recorder's."""

    @hookimpl
    def pynector_configure_telemetry(self, service_name: str, log_level: str) -> None:
        """Accept the settings and do nothing with them."""


recorder = Recorder()
