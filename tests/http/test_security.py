"""Secrets stay secret; default headers stay with base_url's origin."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

from pynector import Pynector, hookimpl, registry
from pynector.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    HTTPStatusError,
)
from pynector_http import HTTPTransport

from ._control import ControlServer
from ._faults import refused_port

pytestmark = pytest.mark.anyio

TOKEN = "tok-3f9a7c2e51d8"
API_KEY = "key-7b1e0c94aa62"
OTHER_KEY = "api-5d2c8e7f1b03"
COOKIE = "session=ck-8e4d2a6b9c17"
URL_PASSWORD = "pw-c0ffee42beef"
SECRETS = (TOKEN, API_KEY, OTHER_KEY, "ck-8e4d2a6b9c17", URL_PASSWORD)
DEFAULTS = {
    "Authorization": f"Bearer {TOKEN}",
    "X-Api-Key": API_KEY,
    "Api-Key": OTHER_KEY,
    "Cookie": COOKIE,
    "X-Team": "blue",
}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} leaked into: {text}"


def credentials_url(server: ControlServer) -> str:
    return server.url.replace("http://", f"http://alice:{URL_PASSWORD}@")


async def test_reprs_never_show_secrets(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(
        engine=engine, base_url=credentials_url(control), headers=DEFAULTS
    ) as transport:
        response = await transport.request(
            {"path": "/echo", "params": {"api_key": API_KEY, "page": 2}}
        )
        client = Pynector(transport=transport)
        assert response.request is not None
        texts = [
            repr(transport),
            repr(response),
            repr(response.request),
            repr(response.request.headers),
            repr(response.headers),
            repr(client),
        ]
    assert response.json()["query"]["api_key"] == API_KEY
    assert "[redacted]" in repr(response.request.headers)
    assert "page=2" in repr(response.request)
    for text in texts:
        assert_no_secret(text)


async def test_error_messages_never_show_secrets_even_when_the_body_echoes_them(
    control: ControlServer, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=credentials_url(control), headers=DEFAULTS
    ) as transport:
        with pytest.raises(AuthenticationError) as caught:
            await transport.request(
                {
                    "path": "/echo",
                    "params": {"status": 401, "token": TOKEN},
                    "headers": {"X-Api-Key": API_KEY},
                }
            )
    error = caught.value
    body = error.response.json()
    assert body["headers"]["Authorization"] == f"Bearer {TOKEN}"  # the server did echo it
    assert_no_secret(str(error))
    assert_no_secret(repr(error))
    assert "[redacted]" in str(error)


async def test_connection_error_for_a_url_with_credentials_hides_them(engine: str) -> None:
    url = f"http://alice:{URL_PASSWORD}@127.0.0.1:{refused_port()}"
    async with HTTPTransport(engine=engine, headers=DEFAULTS) as transport:
        with pytest.raises(ConnectionError) as caught:
            await transport.request({"url": f"{url}/x?access_token={TOKEN}"})
    assert_no_secret(str(caught.value))
    assert "access_token=[redacted]" in str(caught.value)


async def test_logs_never_show_secrets(
    control: ControlServer, caplog: pytest.LogCaptureFixture, engine: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Pynector(
        transport_type="http", engine=engine, base_url=credentials_url(control), headers=DEFAULTS
    ) as client:
        await client.request({"path": "/echo", "headers": {"Authorization": f"Bearer {TOKEN}"}})
        await client.request({"url": f"{credentials_url(control)}/echo"})
        with pytest.raises(HTTPStatusError):
            await client.request({"path": "/echo", "params": {"status": 500}})
    assert caplog.records, "httpx2 and httpcore2 log every request at DEBUG/INFO"
    for record in caplog.records:
        assert_no_secret(record.getMessage())


async def test_url_credentials_become_basic_auth_for_that_origin_only(
    control: ControlServer, other_origin: ControlServer, engine: str
) -> None:
    expected = "Basic " + base64.b64encode(f"alice:{URL_PASSWORD}".encode()).decode()
    async with HTTPTransport(engine=engine, base_url=credentials_url(control)) as transport:
        own = await transport.request({"path": "/echo"})
        other = await transport.request({"url": f"{other_origin.url}/echo"})
        explicit = await transport.request({"url": f"{credentials_url(other_origin)}/echo"})
    assert own.json()["headers"]["Authorization"] == expected
    assert "Authorization" not in other.json()["headers"]
    assert explicit.json()["headers"]["Authorization"] == expected
    assert URL_PASSWORD not in own.url
    assert URL_PASSWORD not in explicit.url


async def test_default_headers_go_only_to_base_urls_origin(
    control: ControlServer, other_origin: ControlServer, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url, headers=DEFAULTS) as transport:
        relative = await transport.request({"path": "/echo"})
        same_origin = await transport.request({"url": f"{control.url}/echo"})
        elsewhere = await transport.request(
            {"url": f"{other_origin.url}/echo", "headers": {"X-Own": "mine"}}
        )
    for response in (relative, same_origin):
        headers = response.json()["headers"]
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["X-Api-Key"] == API_KEY
        assert headers["X-Team"] == "blue"
    seen = elsewhere.json()["headers"]
    for name in DEFAULTS:
        assert name not in seen
    assert seen["X-Own"] == "mine"


async def test_without_base_url_default_headers_go_to_every_url(
    control: ControlServer, other_origin: ControlServer, engine: str
) -> None:
    async with HTTPTransport(engine=engine, headers={"X-Team": "blue"}) as transport:
        first = await transport.request({"url": f"{control.url}/echo"})
        second = await transport.request({"url": f"{other_origin.url}/echo"})
    assert first.json()["headers"]["X-Team"] == second.json()["headers"]["X-Team"] == "blue"


async def test_cross_origin_redirect_drops_default_and_secret_headers(
    control: ControlServer, other_origin: ControlServer, key: str, engine: str
) -> None:
    target = f"{other_origin.url}/echo?key={key}"
    async with HTTPTransport(
        engine=engine, base_url=control.url, headers=DEFAULTS, follow_redirects=True
    ) as transport:
        response = await transport.request(
            {
                "path": "/redirect",
                "params": {"to": target, "status": 307},
                "headers": {"X-Api-Key": API_KEY, "Proxy-Authorization": f"Basic {TOKEN}"},
            }
        )
    assert response.url == target
    seen = other_origin.key(key).headers[-1]
    lowered = {name.lower() for name in seen}
    for name in [*DEFAULTS, "Proxy-Authorization"]:
        assert name.lower() not in lowered
    assert_no_secret(str(seen))


async def test_same_origin_redirect_keeps_the_headers(
    control: ControlServer, key: str, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine,
        base_url=control.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        follow_redirects=True,
    ) as transport:
        await transport.request(
            {"path": "/redirect", "params": {"to": f"/echo?key={key}", "status": 302}}
        )
    assert control.key(key).headers[-1]["Authorization"] == f"Bearer {TOKEN}"


async def test_credentials_in_a_redirect_location_are_not_sent(
    control: ControlServer, key: str, engine: str
) -> None:
    target = f"{credentials_url(control)}/echo?key={key}"
    async with HTTPTransport(
        engine=engine, base_url=control.url, follow_redirects=True
    ) as transport:
        response = await transport.request({"path": "/redirect", "params": {"to": target}})
    assert "Authorization" not in control.key(key).headers[-1]
    assert URL_PASSWORD not in response.url


async def test_configuration_errors_never_quote_secrets(engine: str) -> None:
    async with HTTPTransport(engine=engine) as transport:
        with pytest.raises(ConfigurationError) as path:
            await transport.request({"path": f"/x?token={TOKEN}"})
        with pytest.raises(ConfigurationError) as relative:
            await transport.request({"url": f"x?api_key={API_KEY}"})
        with pytest.raises(ConfigurationError) as header:
            await transport.request(
                {
                    "url": "http://127.0.0.1:1/",
                    "headers": {"Authorization": TOKEN.encode()},  # type: ignore[dict-item]
                }
            )
        with pytest.raises(ConfigurationError) as injected:
            await transport.request(
                {"url": "http://127.0.0.1:1/", "headers": {"X-Api-Key": f"{API_KEY}\r\n"}}
            )
    for caught in (path, relative, header, injected):
        assert_no_secret(str(caught.value))
        assert "[redacted]" in str(caught.value)


def test_verify_is_on_by_default() -> None:
    assert HTTPTransport()._verify is True


class _TracePlugin:
    """A plugin that adds a W3C trace header, as pynector-otel does."""

    @hookimpl
    def pynector_headers(self, headers: dict[str, str]) -> None:
        headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        headers["X-Team"] = "from-plugin"


@pytest.fixture
def trace_plugin() -> Iterator[None]:
    name = registry.register_plugin(_TracePlugin(), name="http-test-trace")
    yield
    registry.unregister_plugin(name)


@pytest.mark.usefixtures("trace_plugin")
async def test_plugins_add_outgoing_headers_without_overriding_the_callers(
    control: ControlServer, other_origin: ControlServer, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=control.url, headers={"X-Team": "blue"}
    ) as transport:
        own = await transport.request({"path": "/echo"})
        elsewhere = await transport.request({"url": f"{other_origin.url}/echo"})
    assert own.json()["headers"]["traceparent"].startswith("00-0af7651916cd43dd")
    assert own.json()["headers"]["X-Team"] == "blue"
    assert elsewhere.json()["headers"]["traceparent"].startswith("00-0af7651916cd43dd")
