"""What the HTTP transport reports on each call: URL, server, status, headers, span attributes.

A plugin given to the client keeps every call it sees; after the request the
call holds what the transport learnt, on success and on failure, in the
OpenTelemetry HTTP client conventions (``url.full`` redacted).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

import pynector
from pynector import Call, Pynector
from pynector.errors import ConnectionError, NotFoundError
from pynector_http import HTTPTransport

from ._control import ControlServer

pytestmark = pytest.mark.anyio


class Calls:
    """A plugin that keeps the calls it sees and adds a header to each."""

    def __init__(self) -> None:
        self.calls: list[Call[Any]] = []
        self.hops: list[dict[str, Any]] = []  # what each redirected hop reported

    @pynector.hookimpl
    def pynector_request(self, info: Call[Any]) -> None:
        self.calls.append(info)

    @pynector.hookimpl
    def pynector_request_hop(self, info: Call[Any]) -> None:
        self.hops.append(dict(info.attributes))

    @pynector.hookimpl
    def pynector_headers(self, headers: dict[str, str]) -> None:
        headers["x-trace"] = "t-1"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_of(server: ControlServer) -> int:
    return int(server.url.rpartition(":")[2])


async def test_a_successful_request_reports_url_server_status_headers_and_attributes(
    control: ControlServer, key: str, engine: str
) -> None:
    seen = Calls()
    transport = HTTPTransport(base_url=control.url, engine=engine, headers={"X-Own": "1"})
    async with Pynector(transport=transport, plugins=[seen]) as client:
        response = await client.request({"path": "/echo", "params": {"key": key}})
    (call,) = seen.calls
    port = port_of(control)
    assert call.url == f"{control.url}/echo?key={key}"
    assert (call.server_address, call.server_port, call.status) == ("127.0.0.1", port, 200)
    assert call.limit_key == control.url
    assert call.span_name == "GET"
    sent = response.json()["headers"]
    assert call.attributes == {
        "http.request.method": "GET",
        "url.full": f"{control.url}/echo?key=REDACTED",  # "key" can be a credential
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
        # Reported because a plugin takes part in the call: the engine's own User-Agent.
        "user_agent.original": sent["User-Agent"],
        "network.peer.address": "127.0.0.1",
        "network.peer.port": port,
    }
    assert call.request_headers is not None
    assert call.response_headers is not None
    # As sent: the trace header and the engine's own headers too.
    assert call.request_headers["x-trace"] == sent["x-trace"] == "t-1"
    assert call.request_headers["x-own"] == "1"
    assert call.request_headers["user-agent"] == sent["User-Agent"]
    assert call.response_headers["content-type"] == response.headers["content-type"]


async def test_a_status_error_reports_the_reply(control: ControlServer, engine: str) -> None:
    seen = Calls()
    async with Pynector(
        transport=HTTPTransport(base_url=control.url, engine=engine), plugins=[seen]
    ) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.request({"path": "/echo", "method": "POST", "params": {"status": 404}})
    (call,) = seen.calls
    assert caught.value.response is not None
    assert call.status == 404
    assert call.span_name == "POST"
    assert call.attributes["http.response.status_code"] == 404
    assert call.attributes["url.full"] == f"{control.url}/echo?status=404"
    assert call.response_headers is not None
    assert call.response_headers["content-type"] == "application/json"


async def test_a_connection_error_reports_what_was_known_before_sending(engine: str) -> None:
    seen = Calls()
    port = closed_port()
    async with Pynector(transport=HTTPTransport(engine=engine), plugins=[seen]) as client:
        with pytest.raises(ConnectionError):
            await client.request({"url": f"http://127.0.0.1:{port}/x", "headers": {"X-A": "b"}})
    (call,) = seen.calls
    assert call.url == f"http://127.0.0.1:{port}/x"
    assert (call.server_address, call.server_port, call.status) == ("127.0.0.1", port, None)
    assert call.attributes == {
        "http.request.method": "GET",
        "url.full": f"http://127.0.0.1:{port}/x",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": port,
    }
    assert call.request_headers is not None
    # The caller's and the plugins' (an installed tracing plugin may add its own too).
    assert {"x-a": "b", "x-trace": "t-1"}.items() <= dict(call.request_headers).items()
    assert call.response_headers is None


async def test_a_redirect_reports_its_hops_and_a_retry_its_resend_count(
    control: ControlServer, other_origin: ControlServer, key: str, engine: str
) -> None:
    seen = Calls()
    target = f"{other_origin.url}/flaky?key={key}&fail=1"
    transport = HTTPTransport(base_url=control.url, engine=engine, follow_redirects=True)
    async with Pynector(transport=transport, plugins=[seen]) as client:
        await client.request_with_retry(
            {"path": "/redirect", "params": {"to": target}}, max_retries=1, retry_delay=0.001
        )
    first, second = seen.calls
    for call in (first, second):
        assert call.url == target
        assert call.server_port == port_of(other_origin)
        assert call.attributes["url.full"] == target.replace(key, "REDACTED")
    assert first.status == 503
    # Each attempt's redirect counts in http.request.resend_count (attempt - 1 + hop).
    assert first.attributes["http.request.resend_count"] == 1
    assert second.status == 200
    assert second.attributes["http.request.resend_count"] == 2
    # Each attempt's first hop was reported to the plugins before the redirect.
    assert [hop["http.response.status_code"] for hop in seen.hops] == [302, 302]
    assert [hop.get("http.request.resend_count") for hop in seen.hops] == [None, 1]
    # The limiter's key is the origin the request was made to, not the redirect's.
    assert second.limit_key == control.url


async def test_credentials_and_secret_query_values_are_redacted_from_url_full_only(
    control: ControlServer, engine: str
) -> None:
    seen = Calls()
    url = control.url.replace("http://", "http://alice:pa55word-9@") + "/echo?api_key=k-42&page=2"
    async with Pynector(transport=HTTPTransport(engine=engine), plugins=[seen]) as client:
        response = await client.request({"url": url})
    (call,) = seen.calls
    host = control.url.removeprefix("http://")
    assert response.json()["headers"]["Authorization"].startswith("Basic ")
    # The URL sent: credentials went in the Authorization header, the query as given.
    assert call.url == f"http://{host}/echo?api_key=k-42&page=2"
    assert call.attributes["url.full"] == (
        f"http://REDACTED:REDACTED@{host}/echo?api_key=REDACTED&page=2"
    )
    assert call.limit_key == control.url


async def test_a_method_outside_the_standard_set_is_other(
    control: ControlServer, engine: str
) -> None:
    seen = Calls()
    async with Pynector(
        transport=HTTPTransport(base_url=control.url, engine=engine), plugins=[seen]
    ) as client:
        with pytest.raises(pynector.PynectorError):
            await client.request({"path": "/echo", "method": "PURGE"})
    (call,) = seen.calls
    assert call.span_name == "HTTP"
    assert call.attributes["http.request.method"] == "_OTHER"
    assert call.attributes["http.request.method_original"] == "PURGE"


async def test_a_stream_reports_on_its_call(control: ControlServer, engine: str) -> None:
    seen = Calls()
    async with Pynector(
        transport=HTTPTransport(base_url=control.url, engine=engine), plugins=[seen]
    ) as client:
        async with client.stream({"path": "/stream", "params": {"chunks": 2}}) as chunks:
            body = b"".join([chunk async for chunk in chunks])
    (call,) = seen.calls
    assert len(body) == 2048
    assert call.streaming is True
    assert call.status == 200
    assert call.span_name == "GET"
    assert call.attributes["url.full"] == f"{control.url}/stream?chunks=2"
    assert call.attributes["http.response.status_code"] == 200
    assert call.request_headers is not None
    assert call.request_headers["x-trace"] == "t-1"


@pytest.mark.parametrize("transport_telemetry", [True, False])
@pytest.mark.parametrize("client_telemetry", [True, False])
async def test_trace_headers_are_sent_only_when_both_the_transport_and_the_client_allow(
    control: ControlServer,
    engine: str,
    transport_telemetry: bool,
    client_telemetry: bool,
) -> None:
    class Tracing(Calls):
        pynector_telemetry = True  # a telemetry plugin: a client's enable_telemetry governs it

    transport = HTTPTransport(
        base_url=control.url, engine=engine, enable_telemetry=transport_telemetry
    )
    async with Pynector(
        transport=transport, enable_telemetry=client_telemetry, plugins=[Tracing()]
    ) as client:
        response = await client.request({"path": "/echo"})
    sent = response.json()["headers"]
    assert ("x-trace" in sent) is (transport_telemetry and client_telemetry)
