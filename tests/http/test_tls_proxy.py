"""TLS with a trustme certificate, and requests through a real loopback proxy."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path

import pytest

from pynector import Pynector
from pynector.errors import ConnectionError, HTTPStatusError
from pynector_http import HTTPTransport

from ._control import ControlServer
from ._faults import refused_port
from ._proxy import ProxyServer
from .conftest import PROXY_USER

pytestmark = pytest.mark.anyio


async def test_https_with_the_test_ca_as_an_ssl_context(
    tls_control: ControlServer, ca_context: ssl.SSLContext, key: str, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=tls_control.url, verify=ca_context
    ) as transport:
        response = await transport.request({"path": "/echo", "params": {"key": key}})
    assert response.url.startswith("https://127.0.0.1:")
    assert response.json()["attempt"] == 1


async def test_https_with_the_test_ca_as_a_file_path(
    tls_control: ControlServer, ca_file: Path, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=tls_control.url, verify=str(ca_file)
    ) as transport:
        response = await transport.request({"path": "/echo"})
    assert response.status_code == 200


async def test_default_verification_rejects_an_unknown_ca(
    tls_control: ControlServer, engine: str
) -> None:
    # verify=True by default: the system bundle does not know the test CA.
    async with HTTPTransport(engine=engine, base_url=tls_control.url) as transport:
        with pytest.raises(ConnectionError) as caught:
            await transport.request({"path": "/echo"})
    assert caught.value.retryable is False
    assert "TLS handshake failed" in str(caught.value)
    assert "verify=ssl.create_default_context" in str(caught.value)


async def test_verify_false_skips_verification(tls_control: ControlServer, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=tls_control.url, verify=False) as transport:
        response = await transport.request({"path": "/echo"})
    assert response.status_code == 200


async def test_seed_proxies_mapping_routes_http_through_the_proxy(
    control: ControlServer, proxy: ProxyServer, key: str, engine: str
) -> None:
    before = len(proxy.seen)
    async with Pynector(
        transport_type="http",
        engine=engine,
        base_url=control.url,
        headers={"Authorization": "Bearer token"},
        timeout=30.0,
        follow_redirects=True,
        verify=True,  # Verify SSL certificates
        proxies={"http": proxy.url},
    ) as client:
        response = await client.request({"path": "/echo", "params": {"key": key}})
    assert [seen.target for seen in proxy.seen[before:]] == [f"{control.url}/echo?key={key}"]
    assert response.json()["headers"]["Via"] == "1.1 test-proxy"
    assert response.json()["headers"]["Authorization"] == "Bearer token"


async def test_single_proxy_url_routes_every_request(
    control: ControlServer, proxy: ProxyServer, key: str, engine: str
) -> None:
    before = len(proxy.seen)
    async with HTTPTransport(engine=engine, base_url=control.url, proxies=proxy.url) as transport:
        await transport.request({"path": "/echo", "params": {"key": key}})
        await transport.request({"path": "/echo", "params": {"key": key}})
    assert len(proxy.seen) - before == 2
    assert all(header.get("Via") == "1.1 test-proxy" for header in control.key(key).headers)


async def test_https_goes_through_a_connect_tunnel(
    tls_control: ControlServer, proxy: ProxyServer, ca_context: ssl.SSLContext, engine: str
) -> None:
    before = len(proxy.seen)
    async with HTTPTransport(
        engine=engine, base_url=tls_control.url, verify=ca_context, proxies={"https": proxy.url}
    ) as transport:
        response = await transport.request({"path": "/echo"})
    port = tls_control.server_address[1]
    assert [(s.method, s.target) for s in proxy.seen[before:]] == [("CONNECT", f"127.0.0.1:{port}")]
    assert response.status_code == 200


async def test_a_none_proxy_entry_means_direct(
    control: ControlServer, proxy: ProxyServer, engine: str
) -> None:
    before = len(proxy.seen)
    async with HTTPTransport(
        engine=engine, base_url=control.url, proxies={"https": proxy.url, "http": None}
    ) as transport:
        await transport.request({"path": "/echo"})
    assert len(proxy.seen) == before


async def test_proxy_credentials_reach_only_the_proxy_and_are_never_shown(
    control: ControlServer, auth_proxy: ProxyServer, key: str, engine: str
) -> None:
    user, password = PROXY_USER
    proxy_url = auth_proxy.url.replace("http://", f"http://{user}:{password}@")
    before = len(auth_proxy.seen)
    async with HTTPTransport(
        engine=engine, base_url=control.url, proxies={"all": proxy_url}
    ) as transport:
        response = await transport.request({"path": "/echo", "params": {"key": key}})
        with pytest.raises(HTTPStatusError) as caught:
            await transport.request({"path": "/echo", "params": {"status": 500}})
        shown = repr(transport) + str(caught.value) + repr(response.request)
    assert auth_proxy.seen[before].proxy_authorization == auth_proxy.expected
    assert "proxy-authorization" not in {name.lower() for name in control.key(key).headers[-1]}
    assert password not in shown


async def test_proxy_refusing_credentials_is_not_retryable(
    control: ControlServer, tls_control: ControlServer, auth_proxy: ProxyServer, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=control.url, proxies=auth_proxy.url
    ) as transport:
        with pytest.raises(HTTPStatusError) as forwarded:
            await transport.request({"path": "/echo"})
        with pytest.raises(ConnectionError) as tunnel:
            await transport.request({"url": f"{tls_control.url}/echo"})
    assert forwarded.value.status_code == 407
    assert forwarded.value.retryable is False
    assert tunnel.value.retryable is False
    assert "proxy" in str(tunnel.value)


async def test_proxy_that_is_down_is_a_retryable_connection_error(
    control: ControlServer, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=control.url, proxies=f"http://127.0.0.1:{refused_port()}"
    ) as transport:
        with pytest.raises(ConnectionError) as caught:
            await transport.request({"path": "/echo"})
    assert caught.value.retryable is True


async def test_http2_is_negotiated_over_tls_when_enabled(
    http2_url: str, ca_context: ssl.SSLContext, ca_file: Path, engine: str
) -> None:
    # HTTP/2 is httpx2's: engine="auto" (the default) picks httpx2 for it on any loop.
    async with HTTPTransport(base_url=http2_url, verify=ca_context, http2=True) as transport:
        responses = [await transport.request({"path": f"/n/{i}"}) for i in range(3)]
        picked = transport.engine
    # Without http2=True every engine speaks HTTP/1.1 to a server that prefers HTTP/2.
    async with HTTPTransport(engine=engine, base_url=http2_url, verify=str(ca_file)) as transport:
        http1 = await transport.request({"path": "/n/0"})
    assert picked == "httpx2"
    assert [r.http_version for r in responses] == ["HTTP/2"] * 3
    assert responses[0].json() == {"http_version": "2", "path": "/n/0"}
    assert http1.http_version == "HTTP/1.1"
    assert http1.json() == {"http_version": "1.1", "path": "/n/0"}


class _RecordingContext(ssl.SSLContext):
    """An SSL context that records every change of its ALPN protocols."""

    alpn_calls: list[list[str]]

    def set_alpn_protocols(self, alpn_protocols: Iterable[str]) -> None:
        self.alpn_calls.append(list(alpn_protocols))
        super().set_alpn_protocols(alpn_protocols)


@pytest.mark.parametrize("backend_engine", [("asyncio", "aiohttp")], ids=["asyncio-aiohttp"])
async def test_the_aiohttp_engine_never_changes_the_callers_ssl_context(
    tls_control: ControlServer, ca_file: Path, engine: str
) -> None:
    context = _RecordingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.alpn_calls = []
    context.load_verify_locations(cafile=str(ca_file))
    options = context.options
    async with HTTPTransport(engine=engine, base_url=tls_control.url, verify=context) as transport:
        response = await transport.request({"path": "/echo"})
    assert response.status_code == 200
    assert context.alpn_calls == []  # shared with other code: its protocols are its owner's
    assert context.options == options
