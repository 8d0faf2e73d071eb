"""Requests and responses against httpbin, a server nobody here wrote."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import anyio
import pytest

from pynector.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    HTTPStatusError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)
from pynector_http import Headers, HTTPTransport, Request, Response

from ._control import ControlServer

pytestmark = pytest.mark.anyio


async def test_get_with_params_returns_a_response_with_httpx_names(
    httpbin_url: str, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=httpbin_url) as transport:
        response = await transport.request(
            {"path": "/get", "method": "GET", "params": {"limit": 10, "tag": ["a", "b"]}}
        )
    assert isinstance(response, Response)
    assert response.status_code == 200
    assert response.is_success
    assert not response.is_error
    assert response.reason_phrase == "OK"
    assert response.http_version == "HTTP/1.1"
    assert response.url == f"{httpbin_url}/get?limit=10&tag=a&tag=b"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["Content-Type"] == response.headers.get("CONTENT-TYPE")
    assert response.json()["args"] == {"limit": "10", "tag": ["a", "b"]}
    assert json.loads(response.text) == json.loads(response.content)
    assert isinstance(response.elapsed, timedelta)
    assert response.elapsed > timedelta(0)
    assert isinstance(response.request, Request)
    assert response.request.method == "GET"
    assert response.request.url == response.url
    assert "user-agent" in response.request.headers
    assert repr(response) == "<Response [200 OK]>"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_json_body_is_sent_with_each_method(
    httpbin_url: str, method: str, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=httpbin_url) as transport:
        response = await transport.request(
            {"path": f"/{method.lower()}", "method": method.lower(), "json": {"name": "ada"}}
        )
    sent = response.json()
    assert sent["json"] == {"name": "ada"}
    assert sent["headers"]["Content-Type"] == "application/json"


async def test_form_data_and_files_are_sent_as_multipart(httpbin_url: str, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=httpbin_url) as transport:
        form = await transport.request({"path": "/post", "method": "POST", "data": {"a": "1"}})
        multipart = await transport.request(
            {
                "path": "/post",
                "method": "POST",
                "data": {"field": "value"},
                "files": {"upload": ("notes.txt", b"file body", "text/plain")},
            }
        )
    assert form.json()["form"] == {"a": "1"}
    assert multipart.json()["form"] == {"field": "value"}
    assert multipart.json()["files"] == {"upload": "file body"}


async def test_raw_content_bytes_and_str(httpbin_url: str, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=httpbin_url) as transport:
        raw = await transport.request({"path": "/post", "method": "POST", "content": b"\x00\x01"})
        text = await transport.request({"path": "/post", "method": "POST", "content": "héllo"})
    assert raw.json()["data"] == "\x00\x01"
    assert text.json()["data"] == "héllo"


async def test_async_iterable_content_is_sent_chunked(control: ControlServer, engine: str) -> None:
    # werkzeug's development server rejects chunked uploads, so this one uses ours.
    async def body() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        response = await transport.request({"path": "/echo", "method": "POST", "content": body()})
    assert response.json()["body"] == "part one, part two"
    assert response.json()["headers"]["Transfer-Encoding"] == "chunked"


async def test_request_headers_override_default_headers_case_insensitively(
    httpbin_url: str, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=httpbin_url, headers={"X-Default": "default", "X-Shared": "default"}
    ) as transport:
        response = await transport.request({"path": "/headers", "headers": {"x-shared": "own"}})
    headers = response.json()["headers"]
    assert headers["X-Default"] == "default"
    assert headers["X-Shared"] == "own"
    assert headers["User-Agent"].startswith("pynector-http/")


async def test_absolute_url_and_head_and_gzip_decoding(httpbin_url: str, engine: str) -> None:
    async with HTTPTransport(engine=engine) as transport:
        gzip = await transport.request({"url": f"{httpbin_url}/gzip"})
        head = await transport.request({"url": f"{httpbin_url}/get", "method": "HEAD"})
    assert gzip.json()["gzipped"] is True
    assert head.status_code == 200
    assert head.content == b""


async def test_text_uses_the_declared_charset(httpbin_url: str, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=httpbin_url) as transport:
        response = await transport.request({"path": "/encoding/utf8"})
    assert response.encoding == "utf-8"
    assert "∮" in response.text


@pytest.mark.parametrize(
    ("status", "error_class", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (403, AuthenticationError, False),
        (404, NotFoundError, False),
        (408, HTTPStatusError, True),
        (409, ConflictError, False),
        (418, HTTPStatusError, False),
        (422, UnprocessableEntityError, False),
        (429, RateLimitError, True),
        (500, ServerError, True),
        (502, ServerError, True),
        (503, ServerError, True),
    ],
)
async def test_status_errors_carry_the_response_and_the_retryable_flag(
    httpbin_url: str, status: int, error_class: type[HTTPStatusError], retryable: bool, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=httpbin_url) as transport:
        with pytest.raises(error_class) as caught:
            await transport.request({"path": f"/status/{status}"})
    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert error.retryable is retryable
    assert isinstance(error.response, Response)
    assert error.response.status_code == status
    assert f"GET {httpbin_url}/status/{status} -> {status}" in str(error)


async def test_unfollowed_redirect_raises_and_names_the_fix(httpbin_url: str, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=httpbin_url) as transport:
        with pytest.raises(HTTPStatusError) as caught:
            await transport.request({"path": "/redirect-to", "params": {"url": "/get"}})
        followed = await transport.request(
            {"path": "/redirect-to", "params": {"url": "/get"}}, follow_redirects=True
        )
    assert caught.value.status_code == 302
    assert caught.value.retryable is False
    assert "follow_redirects=True" in str(caught.value)
    assert followed.url == f"{httpbin_url}/get"


async def test_redirects_are_followed_when_the_transport_says_so(
    httpbin_url: str, engine: str
) -> None:
    async with HTTPTransport(
        engine=engine, base_url=httpbin_url, follow_redirects=True
    ) as transport:
        response = await transport.request({"path": "/redirect/3"})
        with pytest.raises(HTTPStatusError):
            await transport.request({"path": "/redirect/1"}, follow_redirects=False)
    assert response.url == f"{httpbin_url}/get"


async def test_error_message_includes_a_short_body_excerpt(
    control: ControlServer, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(NotFoundError) as caught:
            await transport.request({"path": "/missing"})
    assert "no route /missing" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("/users", "must be a dict"),
        ({"path": "/x", "body": "{}"}, "did you mean 'body' -> content"),
        ({"path": "/x", "methdo": "GET"}, "'methdo' -> 'method'"),
        ({"path": "/x", "url": "http://a/"}, "both 'path' and 'url'"),
        ({"path": "http://elsewhere/x"}, "Use {'url': ...}"),
        ({"path": 5}, "'path' must be a string"),
        ({"path": "/x", "method": 1}, "'method' must be a string"),
        ({"path": "/x", "method": "GET /"}, "is not an HTTP method"),
        ({"path": "/x", "json": {}, "data": {"a": "1"}}, "both 'json' and 'data'"),
        ({"path": "/x", "json": {}, "content": b""}, "both 'json' and 'content'"),
        ({"path": "/x", "content": b"", "data": {"a": "1"}}, "both 'content' and 'data'"),
        ({"path": "/x", "data": "raw text"}, "use 'content'"),
        ({"path": "/x", "data": ["a"]}, "'data' must be a dict"),
        ({"path": "/x", "content": 12}, "'content' must be bytes"),
        ({"path": "/x", "headers": {"X-N": 1}}, "write it as 'X-N': '1'"),
        ({"path": "/x", "headers": ["X-N"]}, "'headers' must be a dict"),
        ({"path": "/x", "headers": {"X A": "v"}}, "not a valid HTTP header name"),
        ({"path": "/x", "headers": {"X-A": "a\r\nX-Injected: 1"}}, "not a valid HTTP header value"),
        ({"path": "/x", "headers": {"X-A": "café"}}, "it must be ASCII"),
        ({"path": "/x", "headers": {"X-A": " padded "}}, "spaces around it"),
        ({"path": "/x", "headers": {"Content-Length": "5"}}, "frames the body itself"),
        ({"path": "/x", "files": {"f": 5}}, "could not be encoded"),
        ({"path": "/x", "params": 5}, "check 'params'"),
        ({"path": "/x", "json": {"when": object()}}, "JSON-serialisable"),
        ({"url": "ftp://example.com/x"}, "http:// or https://"),
        ({"url": "http://host:abc/"}, "not a valid URL"),
    ],
)
async def test_bad_request_data_is_a_configuration_error_naming_the_key(
    control: ControlServer, data: Any, fragment: str, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(ConfigurationError) as caught:
            await transport.request(data)
        with pytest.raises(ConfigurationError):
            async with transport.stream(data):
                pass
    assert fragment in str(caught.value)


async def test_path_without_base_url_is_a_configuration_error(engine: str) -> None:
    async with HTTPTransport(engine=engine) as transport:
        with pytest.raises(ConfigurationError, match="needs a base_url"):
            await transport.request({"path": "/users"})
        with pytest.raises(ConfigurationError, match="neither 'path' nor 'url'"):
            await transport.request({"method": "GET"})
        with pytest.raises(ConfigurationError, match="is relative"):
            await transport.request({"url": "/users"})


async def test_missing_path_requests_base_url_itself(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=f"{control.url}/users") as transport:
        response = await transport.request({})
        relative = await transport.request({"url": "7"})
    assert response.json()["path"] == "/users/"  # base_url is a prefix, as in httpx
    assert relative.json()["path"] == "/users/7"


async def test_unknown_or_mistyped_request_options_are_rejected(
    control: ControlServer, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(ConfigurationError, match="'follow_redirect' -> 'follow_redirects'"):
            await transport.request({"path": "/echo"}, follow_redirect=True)
        with pytest.raises(ConfigurationError, match="must be True or False"):
            await transport.request({"path": "/echo"}, idempotent="yes")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"base_url": "api.example.com"}, "absolute http:// or https://"),
        ({"base_url": 3}, "must be a URL string"),
        ({"headers": {"X": 1}}, "'headers'['X'] must be a string"),
        ({"timeout": -1}, "positive number of seconds"),
        ({"timeout": {"connect": 1, "total": 5}}, "unknown phase"),
        ({"timeout": "5"}, "pass seconds"),
        ({"verify": "/no/such/ca.pem"}, "no such CA bundle"),
        ({"verify": 1}, "verify=1 is invalid"),
        ({"proxies": 8080}, "proxies=int is invalid"),
        ({"proxies": {"ftp": "http://p:1"}}, "use 'http', 'https', 'all'"),
        ({"proxies": {"http": "proxy:8080"}}, "http://, https:// or socks5://"),
        ({"proxies": "socks5://127.0.0.1:1080"}, "pip install 'httpx2[socks]'"),
        ({"max_connections": 0}, "whole number >= 1"),
        ({"max_redirects": -1}, "max_redirects=-1"),
        ({"follow_redirects": "yes"}, "must be True or False"),
        ({"engine": "curl"}, "engine='curl' is invalid: use engine='auto'"),
        ({"engine": "aiohttp", "http2": True}, "http2=True needs engine='httpx2'"),
    ],
)
def test_bad_transport_options_are_configuration_errors(
    options: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HTTPTransport(**options)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


async def test_concurrent_requests_share_one_bounded_pool(
    control: ControlServer, key: str, engine: str
) -> None:
    opened_before = control.connections_opened
    async with HTTPTransport(engine=engine, base_url=control.url, max_connections=4) as transport:
        results: list[Response] = []

        async def one(index: int) -> None:
            results.append(
                await transport.request({"path": "/slow", "params": {"key": key, "seconds": 0.01}})
            )

        async with anyio.create_task_group() as group:
            for index in range(40):
                group.start_soon(one, index)
    assert len(results) == 40
    assert all(r.status_code == 200 for r in results)
    assert control.key(key).max_in_flight <= 4
    assert control.connections_opened - opened_before <= 4 + 1


async def test_disconnect_closes_the_pool_and_a_later_request_reopens_it(
    control: ControlServer, key: str, engine: str
) -> None:
    transport = HTTPTransport(engine=engine, base_url=control.url)
    assert "closed" in repr(transport)
    await transport.connect()
    assert "open" in repr(transport)
    await transport.request({"path": "/echo", "params": {"key": key}})
    await transport.disconnect()
    assert control.wait_for(lambda: control.open_connections == 0)
    response = await transport.request({"path": "/echo", "params": {"key": key}})
    await transport.aclose()
    assert response.json()["attempt"] == 2


def test_headers_type_is_case_insensitive_keeps_repeats_and_compares() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-One", "1")])
    assert headers["SET-COOKIE"] == "a=1, b=2"
    assert headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert list(headers) == ["set-cookie", "x-one"]
    assert len(headers) == 2
    assert "x-ONE" in headers
    assert 3 not in headers  # type: ignore[comparison-overlap]
    assert headers.get("missing") is None
    assert headers.get("missing", "d") == "d"
    assert headers == {"x-one": "1", "Set-Cookie": "a=1, b=2"}
    assert headers != {"x-one": "2"}
    assert headers != [("x-one", "1")]
    assert Headers({"A": "1"}) == Headers([("a", "1")])
    assert Headers.from_raw([(b"Content-Type", b"text/plain")])["content-type"] == "text/plain"
    assert "a=1" not in repr(headers)
    with pytest.raises(KeyError):
        headers["missing"]


def test_headers_ask_the_engines_own_headers_for_names_without_decoding() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    raw = [(b"X-RateLimit-Remaining-Requests", b"5"), (b"Date", b"today")]
    probe = CIMultiDictProxy(CIMultiDict((k.decode(), v.decode()) for k, v in raw))
    fast, plain = Headers.from_raw(raw, probe), Headers.from_raw(raw)
    wanted = {"x-ratelimit-remaining-requests", "retry-after"}
    for headers in (fast, plain):
        assert "X-RATELIMIT-remaining-requests" in headers
        assert 3 not in headers  # type: ignore[comparison-overlap]
        assert not headers.keys().isdisjoint(wanted)
        assert headers.keys().isdisjoint({"retry-after"})
        assert list(headers.keys()) == ["x-ratelimit-remaining-requests", "date"]
    assert fast["date"] == "today"
    assert not fast.keys().isdisjoint(wanted)  # after decoding: the same answer


def test_response_can_be_built_by_hand_for_tests() -> None:
    response = Response(201, headers={"Content-Type": "application/json"}, content=b'{"id": 1}')
    assert response.json() == {"id": 1}
    assert response.reason_phrase == "Created"
    assert response.is_success
    assert not response.is_redirect
    assert Response(302).is_redirect
    assert Response(404).is_client_error
    assert Response(503).is_server_error
    assert Response(599).reason_phrase == ""
    assert Response(200, headers={"Content-Type": "text/plain; charset=latin-1"}).encoding == (
        "iso8859-1"
    )
    assert Response(200, headers={"Content-Type": "text/plain; charset=nope"}).encoding == "utf-8"
