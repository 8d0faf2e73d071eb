"""One rule decides what is secret; every text shown is scrubbed of it, in every form.

Real servers on loopback: the control server reached as two origins
(``127.0.0.1`` and ``localhost`` on the same port), a raw server that puts
credentials in its reason phrase and sends malformed ``Set-Cookie`` lines, and
a proxy that echoes the request it received.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import ssl
import threading
import traceback
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest

from pynector.errors import (
    AuthenticationError,
    HTTPStatusError,
    NotFoundError,
    ProtocolError,
    ServerError,
)
from pynector_http import HTTPRequest, HTTPTransport

from ._control import ControlServer
from ._proxy import ProxyServer

pytestmark = pytest.mark.anyio

# Each a header the old fixed list did not know.
OWN_SECRETS = {
    "X-Auth-Token": "xat-4e1b9c7d02",
    "Private-Token": "prt-9a3f6e1c58",
    "X-Api-Token": "xapt-7c2d5b8e41",
    "X-Session-Id": "sid-1f8e3a6c97",
    "X-Csrf-Token": "csrf-6b0d2e9f35",
    "Ocp-Apim-Subscription-Key": "apim-3c7a1e5d80",
}
NOT_SECRET = {"X-Team": "blue", "Idempotency-Key": "idem-5d1c"}
PASSWORD = "p@ss-Wd-8e2f7a"  # percent-encoded in URLs: p%40ss-Wd-8e2f7a
USER = "alice-u7"
COOKIE = "ck-SECRET-5b3e9d1a"


def localhost(server: ControlServer) -> str:
    """The same server as another origin: ``localhost`` instead of ``127.0.0.1``."""
    return server.url.replace("127.0.0.1", "localhost")


def every_form(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()]


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in every_form(secret):
            assert form not in text, f"{form!r} leaked into: {text[:500]}"


def everything(error: BaseException) -> str:
    """The message, the repr and the traceback with every chained cause."""
    return "\n".join([str(error), repr(error), "".join(traceback.format_exception(error))])


# -- point: one rule for redirects -------------------------------------------------------


@pytest.mark.parametrize("direction", ["127.0.0.1-to-localhost", "localhost-to-127.0.0.1"])
async def test_cross_origin_redirect_drops_every_sensitive_request_header(
    control: ControlServer, key: str, engine: str, direction: str
) -> None:
    first, second = (
        (control.url, localhost(control))
        if direction.startswith("127")
        else (localhost(control), control.url)
    )
    async with HTTPTransport(engine=engine, base_url=first, follow_redirects=True) as transport:
        response = await transport.request(
            {
                "path": "/redirect",
                "params": {"to": f"{second}/echo?key={key}", "status": 307, "key": key},
                "headers": {**OWN_SECRETS, **NOT_SECRET},
            }
        )
    assert response.url == f"{second}/echo?key={key}"
    sent_first, sent_second = control.key(key).headers
    for name, value in OWN_SECRETS.items():
        assert sent_first[name] == value  # the first origin got them
        assert name not in sent_second, (name, sent_second)
    for name, value in NOT_SECRET.items():
        assert sent_second[name] == value  # a plain header of the request's own travels on
    assert_clean(str(sent_second), *OWN_SECRETS.values())


async def test_same_origin_redirect_keeps_every_header(
    control: ControlServer, key: str, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=control.url, follow_redirects=True
    ) as transport:
        await transport.request(
            {
                "path": "/redirect",
                "params": {"to": f"/echo?key={key}", "status": 302, "key": key},
                "headers": OWN_SECRETS,
            }
        )
    for name, value in OWN_SECRETS.items():
        assert control.key(key).headers[-1][name] == value


async def test_errors_and_reprs_hide_every_parameter_the_rule_flags(
    control: ControlServer, engine: str
) -> None:
    params = {
        "accessToken": "qa-1c9e4b7f20",
        "auth_token": "qb-6d2a8e1c53",
        "api_token": "qc-3f7b0d9e16",
        "private_token": "qd-8e4c1a6b72",
        "secret_key": "qe-2b9f5d3c08",
        "sessionid": "qf-7a1e6c4d95",
        "jwt": "qg-eyJhbGciOi0",
        "client-secret": "qh-5c8d2f0a61",
    }
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(NotFoundError) as caught:
            await transport.request({"path": "/nowhere", "params": {**params, "keyword": "kept"}})
        ok = await transport.request({"path": "/echo", "params": params})
    assert_clean(everything(caught.value), *params.values())
    assert_clean(repr(ok.request) + repr(ok), *params.values())
    assert "keyword=kept" in str(caught.value)
    assert ok.json()["query"] == params  # they were sent


# -- a raw server that echoes credentials where it should not ------------------------------


class HeadServer:
    """One reply per connection, built by ``reply(path, headers)`` from the request head."""

    def __init__(self, reply: Callable[[str, dict[str, str]], bytes]) -> None:
        self._reply = reply
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock, contextlib.suppress(OSError):
            sock.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            line, *lines = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            headers = dict(entry.split(": ", 1) for entry in lines)
            sock.sendall(self._reply(line.split(" ")[1].split("?")[0], headers))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


def _reply(path: str, headers: dict[str, str]) -> bytes:
    if path == "/reason":
        # A reason phrase and a body that repeat the credentials in every form.
        pair = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode()
        password = pair.partition(":")[2]
        echo = f"bad credentials {pair} {quote(password, safe='')} {headers['Authorization']}"
        reason = f"{echo} {'x' * 400}"
        body = f"{echo} {quote(pair, safe='')}".encode()
        return (
            f"HTTP/1.1 401 {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
    cookie = f"session={COOKIE}".encode()
    if path == "/cookie-nul":
        line = b"Set-Cookie: " + cookie + b"\x00; Path=/"
    elif path == "/cookie-no-colon":
        line = b"Set-Cookie " + cookie
    elif path == "/cookie-huge":
        line = b"Set-Cookie: " + cookie + b"z" * 300_000
    else:
        line = b"Set-Cookie: " + cookie + b"; Path=/"
    return b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@pytest.fixture(scope="module")
def head_server() -> Iterator[HeadServer]:
    server = HeadServer(_reply)
    yield server
    server.close()


async def test_status_errors_never_show_the_url_password_or_the_echoed_reason(
    head_server: HeadServer, engine: str
) -> None:
    base = head_server.url.replace("://", f"://{USER}:{quote(PASSWORD, safe='')}@")
    targets: list[HTTPRequest] = [{"path": "/reason"}, {"url": f"{base}/reason"}]
    for target in targets:
        transport = HTTPTransport(engine=engine, base_url=base if "path" in target else None)
        async with transport:
            with pytest.raises(AuthenticationError) as caught:
                await transport.request(target)
        error = caught.value
        assert error.response.reason_phrase.startswith("bad credentials [redacted]")
        assert_clean(everything(error), PASSWORD, f"{USER}:{PASSWORD}")
        assert_clean(repr(error.response), PASSWORD, f"{USER}:{PASSWORD}")
        assert "bad credentials [redacted]" in str(error)
        reason = str(error).partition("-> 401 ")[2].partition(" (check")[0]
        assert len(reason) <= 103, reason  # cut short: 100 characters and "..."


@pytest.fixture(scope="module")
def echo_proxy() -> Iterator[ProxyServer]:
    server = ProxyServer(echo=True).start()
    yield server
    server.stop()


@pytest.mark.parametrize("given", ["option", "environment"])
async def test_proxy_credentials_never_appear_when_the_proxy_echoes_the_request(
    echo_proxy: ProxyServer,
    control: ControlServer,
    engine: str,
    given: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy_url = echo_proxy.url.replace("://", f"://{USER}:{quote(PASSWORD, safe='')}@")
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    if given == "environment":
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
    proxies = proxy_url if given == "option" else None
    async with HTTPTransport(engine=engine, proxies=proxies) as transport:
        with pytest.raises(ServerError) as caught:
            await transport.request({"url": f"{control.url}/echo"})
    error = caught.value
    assert "Proxy-Authorization" in error.response.text  # the proxy did echo the credential
    assert echo_proxy.seen[-1].proxy_authorization is not None
    assert_clean(everything(error), PASSWORD, f"{USER}:{PASSWORD}")
    assert "Proxy-Authorization: Basic [redacted]" in str(error)


@pytest.mark.parametrize("path", ["/cookie-nul", "/cookie-no-colon", "/cookie-huge"])
async def test_a_malformed_or_oversized_set_cookie_is_never_quoted(
    head_server: HeadServer, engine: str, path: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=head_server.url) as transport:
        with pytest.raises(ProtocolError) as caught:
            await transport.request({"path": path})
    text = everything(caught.value)
    assert COOKIE not in text
    assert "ck-SECRET" not in text


@pytest.mark.parametrize(
    "backend_engine", [("asyncio", "httpx2"), ("trio", "httpx2")], ids=["asyncio", "trio"]
)
async def test_httpcore2_debug_logs_never_show_set_cookie_values(
    head_server: HeadServer, engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with HTTPTransport(engine=engine, base_url=head_server.url) as transport:
        response = await transport.request({"path": "/cookie"})
        for malformed in ("/cookie-nul", "/cookie-no-colon"):
            with pytest.raises(ProtocolError):
                await transport.request({"path": malformed})
    assert COOKIE in response.headers["set-cookie"]  # it did arrive
    lines = [record.getMessage() for record in caplog.records]
    assert any("Set-Cookie" in line for line in lines if "receive_response_headers" in line)
    assert any("illegal header line" in line for line in lines)
    for line in lines:
        assert COOKIE not in line, line


async def test_an_echoed_secret_header_is_scrubbed_in_every_form(
    control: ControlServer, engine: str
) -> None:
    token = "tok/+= Zq-73c1e9"
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(HTTPStatusError) as caught:
            await transport.request(
                {
                    "path": "/echo",
                    "params": {"status": 400, "note": base64.b64encode(token.encode()).decode()},
                    "headers": {"X-Auth-Token": token},
                }
            )
    assert_clean(str(caught.value), token)


@pytest.mark.parametrize(
    "backend_engine", [("asyncio", "httpx2"), ("trio", "httpx2")], ids=["asyncio", "trio"]
)
async def test_httpx2_request_log_lines_never_show_an_echoed_reason(
    head_server: HeadServer, engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx2")
    base = head_server.url.replace("://", f"://{USER}:{quote(PASSWORD, safe='')}@")
    async with HTTPTransport(engine=engine, base_url=base) as transport:
        with pytest.raises(AuthenticationError):
            await transport.request({"path": "/reason"})
        await transport.request({"path": "/cookie"})
    lines = [record.getMessage() for record in caplog.records if record.name == "httpx2"]
    assert lines[0].endswith('"HTTP/1.1 401 [redacted]"'), lines
    assert lines[1].endswith('"HTTP/1.1 200 OK"'), lines
    for line in lines:
        assert_clean(line, PASSWORD)


@pytest.mark.parametrize(
    "backend_engine", [("asyncio", "httpx2"), ("trio", "httpx2")], ids=["asyncio", "trio"]
)
async def test_http2_debug_logs_never_show_secret_header_values(
    http2_url: str, ca_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with HTTPTransport(base_url=http2_url, verify=ca_context, http2=True) as transport:
        response = await transport.request({"path": "/h2", "headers": OWN_SECRETS})
    assert response.http_version == "HTTP/2"
    lines = [record.getMessage() for record in caplog.records]
    assert any(record.name == "hpack.hpack" for record in caplog.records)
    assert any("x-auth-token" in line and "[redacted]" in line for line in lines)
    for line in lines:
        assert_clean(line, *OWN_SECRETS.values())
