"""Transports: the pluggable part of pynector that talks to a remote service."""

from .protocol import CallTransport as CallTransport
from .protocol import LifecycleMixin as LifecycleMixin
from .protocol import StreamingTransport as StreamingTransport
from .protocol import Transport as Transport

__all__ = ["CallTransport", "LifecycleMixin", "StreamingTransport", "Transport"]
