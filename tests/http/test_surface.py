"""The public surface of pynector-http, and its registration as ``http``."""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import entry_points
from typing import cast

import pytest

import pynector_http
from pynector import Call
from pynector.registry import available_transports, resolve_transport
from pynector.transport.protocol import CallTransport
from pynector_http import Headers, HTTPRequest, HTTPTransport, Request, Response

from ._control import ControlServer


def test_public_names_are_exactly_these() -> None:
    assert pynector_http.__all__ == [
        "IDEMPOTENT_METHODS",
        "MAX_RETRY_AFTER",
        "SENSITIVE_HEADERS",
        "HTTPRequest",
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
    assert resolve_transport("http") is cast(object, HTTPTransport)
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


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"url": "https://user:pw@API.example.com/v1/x?token=t"}, "https://api.example.com"),
        ({"url": "https://api.example.com:8443/x"}, "https://api.example.com:8443"),
        ({"url": "http://[::1]:8080/x"}, "http://[::1]:8080"),
        ({"url": "http://example.com:80/x"}, "http://example.com"),
        ({"path": "/users"}, "https://base.example"),
        ({"url": "ftp://example.com/x"}, None),
        ({"path": "/a", "url": "/b"}, None),
    ],
)
def test_limit_key_is_the_requests_origin_without_path_or_credentials(
    data: HTTPRequest, expected: str | None
) -> None:
    transport = HTTPTransport(base_url="https://base.example/api")
    assert transport.limit_key(Call.standalone(data, transport=transport)) == expected


def test_http_transport_is_a_full_transport_without_send_or_receive() -> None:
    assert CallTransport in HTTPTransport.__mro__
    assert HTTPTransport.transport_type == "http"
    assert HTTPTransport.client_settings == frozenset({"max_connections", "max_response_size"})
    assert not hasattr(HTTPTransport, "send")
    assert not hasattr(HTTPTransport, "receive")
    assert not hasattr(HTTPTransport, "request_within")
    assert HTTPTransport().handles_deadline is False  # no pool open yet
