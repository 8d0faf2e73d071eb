"""The public surface of pynector-http, and its registration as ``http``."""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import entry_points

import pytest

import pynector_http
from pynector.registry import available_transports, resolve_transport
from pynector_http import Headers, HTTPTransport, Request, Response

from ._control import ControlServer


def test_public_names_are_exactly_these() -> None:
    assert pynector_http.__all__ == [
        "IDEMPOTENT_METHODS",
        "MAX_RETRY_AFTER",
        "SENSITIVE_HEADERS",
        "HTTPTransport",
        "Headers",
        "Request",
        "Response",
        "ResponseStream",
        "__version__",
        "parse_retry_after",
    ]
    for name in pynector_http.__all__:
        assert getattr(pynector_http, name) is not None


def test_http_is_registered_through_the_entry_point() -> None:
    (entry,) = entry_points(group="pynector.transports", name="http")
    assert entry.value == "pynector_http:HTTPTransport"
    assert resolve_transport("http") is HTTPTransport
    info = {t.name: t for t in available_transports()}["http"]
    assert (info.distribution, info.status) == ("pynector-http", "ok")
    assert info.version == pynector_http.__version__


@pytest.mark.anyio
async def test_response_exposes_no_engine_types(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        response = await transport.request({"path": "/echo"})
    assert type(response) is Response
    assert type(response.headers) is Headers
    assert type(response.url) is str
    assert type(response.content) is bytes
    assert type(response.elapsed) is timedelta
    assert type(response.request) is Request
    assert type(response.request.headers) is Headers
    assert type(response.request.url) is str
