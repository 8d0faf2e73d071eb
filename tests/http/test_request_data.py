"""Request data the transport cannot send is a ConfigurationError, the same on both engines;
paths and base_url queries are kept as written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from pynector import hookimpl, registry
from pynector.errors import ConfigurationError
from pynector_http import HTTPTransport

from ._control import ControlServer

pytestmark = pytest.mark.anyio


def _nested(depth: int) -> list[Any]:
    root: list[Any] = []
    current = root
    for _ in range(depth):
        current.append([])
        current = current[0]
    return root


async def _text_chunks() -> AsyncIterator[str]:
    yield "not"
    yield "bytes"


# case: (request data, the key the message names, a fragment of the fix)
BAD_DATA: dict[str, tuple[Any, str, str]] = {
    "CR/LF in path": ({"path": "/a\r\nX-Injected: 1"}, "'path'", "percent-encode"),
    "LF in url": ({"url": "{base}/a\nb"}, "'url'", "percent-encode"),
    "NUL in path": ({"path": "/a\x00"}, "'path'", "control characters"),
    "tab in path": ({"path": "/a\tb"}, "'path'", "control characters"),
    "lone surrogate in path": ({"path": "/a\ud800"}, "'path'", "lone surrogates"),
    "non-latin-1 header value": (
        {"path": "/echo", "headers": {"X-A": "\u4e2d"}},
        "'headers'",
        "ASCII",
    ),
    "deeply nested json": (
        {"path": "/echo", "method": "POST", "json": _nested(100_000)},
        "'json'",
        "nested too deeply",
    ),
    "unserialisable json": (
        {"path": "/echo", "method": "POST", "json": {"a": {1, 2}}},
        "'json'",
        "JSON-serialisable",
    ),
    "str content with a lone surrogate": (
        {"path": "/echo", "method": "POST", "content": "a\udc80"},
        "'content'",
        "surrogates",
    ),
    "a host label too long": ({"url": "http://" + "a" * 64 + ".test/"}, "'url'", "63"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
async def test_request_data_that_cannot_be_sent_is_a_configuration_error_naming_the_key(
    control: ControlServer, engine: str, case: str
) -> None:
    data, key, fix = BAD_DATA[case]
    if "url" in data:
        data = {**data, "url": data["url"].format(base=control.url)}
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(ConfigurationError) as caught:
            await transport.request(data)
        with pytest.raises(ConfigurationError):
            async with transport.stream(data):
                pass
    message = str(caught.value)
    assert key in message, message
    assert fix in message, message
    assert "\r" not in message  # shown escaped, never raw
    assert "\n" not in message


@pytest.mark.parametrize("backend_engine", [("asyncio", "aiohttp")], ids=["asyncio"])
async def test_the_message_is_the_same_on_both_engines(control: ControlServer) -> None:
    messages: dict[str, list[str]] = {}
    for engine in ("aiohttp", "httpx2"):
        async with HTTPTransport(engine=engine, base_url=control.url) as transport:
            for case, (data, _key, _fix) in sorted(BAD_DATA.items()):
                if "url" in data:
                    data = {**data, "url": data["url"].format(base=control.url)}
                with pytest.raises(ConfigurationError) as caught:
                    await transport.request(data)
                messages.setdefault(case, []).append(str(caught.value))
            with pytest.raises(ConfigurationError) as chunks:
                await transport.request(
                    {"path": "/echo", "method": "POST", "content": _text_chunks()}  # type: ignore[typeddict-item]
                )
            messages.setdefault("str chunks", []).append(str(chunks.value))
    for case, (on_aiohttp, on_httpx2) in messages.items():
        assert on_aiohttp == on_httpx2, case


async def test_a_body_iterator_yielding_str_names_content_and_says_to_yield_bytes(
    control: ControlServer, engine: str, key: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        with pytest.raises(ConfigurationError) as caught:
            await transport.request(
                {
                    "path": "/echo",
                    "method": "POST",
                    "params": {"key": key},
                    "content": _text_chunks(),  # type: ignore[typeddict-item]
                }
            )
        # The transport is still fine afterwards.
        ok = await transport.request({"path": "/echo", "method": "POST", "content": b"ok"})
    message = str(caught.value)
    assert "'content'" in message, message
    assert "must yield bytes" in message, message
    assert "connection" not in message
    assert ok.json()["body"] == "ok"


async def test_bytes_like_chunks_are_sent(control: ControlServer, engine: str) -> None:
    async def chunks() -> AsyncIterator[bytes | bytearray | memoryview]:
        yield b"a"
        yield bytearray(b"b")
        yield memoryview(b"c")

    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        response = await transport.request({"path": "/echo", "method": "POST", "content": chunks()})
    assert response.json()["body"] == "abc"


@pytest.mark.parametrize(
    ("base_url", "fragment"),
    [
        ("http://127.0.0.1:99999", "invalid port"),
        ("http://127.0.0.1:-1", "invalid port"),
        ("http://127.0.0.1:1/api\r\n", "control character"),
    ],
)
def test_a_bad_base_url_is_a_configuration_error_naming_base_url(
    base_url: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HTTPTransport(base_url=base_url)
    message = str(caught.value)
    assert message.startswith("base_url="), message
    assert fragment in message, message
    assert "\r" not in message


def test_the_cli_reports_a_bad_base_url_port_as_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pynector", "request", "--base-url", "http://127.0.0.1:99999", "/x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "invalid port" in done.stderr


# -- what a path and base_url keep --------------------------------------------------------


async def test_a_path_whose_query_holds_a_url_is_a_path(
    control: ControlServer, engine: str
) -> None:
    async with HTTPTransport(engine=engine, base_url=control.url) as transport:
        response = await transport.request({"path": "/echo?next=https://elsewhere.test/x"})
        with pytest.raises(ConfigurationError, match="is an absolute URL"):
            await transport.request({"path": "https://elsewhere.test/x"})
        with pytest.raises(ConfigurationError, match="is an absolute URL"):
            await transport.request({"path": "//elsewhere.test/x"})
        relative = await transport.request({"url": "echo?next=http://x.test"})
    body = response.json()
    assert body["path"] == "/echo"
    assert body["query"] == {"next": "https://elsewhere.test/x"}
    assert relative.json()["query"] == {"next": "http://x.test"}


async def test_base_url_query_is_kept_and_merged_before_the_paths_and_params(
    control: ControlServer, engine: str
) -> None:
    base = f"{control.url}/users?api-version=2024-02-01&tenant=a"
    async with HTTPTransport(engine=engine, base_url=base) as transport:
        plain = await transport.request({})
        with_path_query = await transport.request({"path": "?tenant=b&x=1"})
        with_params = await transport.request({"params": {"api-version": "2025-01-01", "y": 2}})
        relative_url = await transport.request({"url": "?x=2"})
    assert plain.json()["query"] == {"api-version": "2024-02-01", "tenant": "a"}
    assert with_path_query.json()["query"] == {"api-version": "2024-02-01", "tenant": "b", "x": "1"}
    assert with_params.json()["query"] == {"api-version": "2025-01-01", "tenant": "a", "y": "2"}
    assert relative_url.json()["query"] == {"api-version": "2024-02-01", "tenant": "a", "x": "2"}
    assert re.search(r"\?api-version=2024-02-01&tenant=b&x=1$", with_path_query.url)


async def test_base_url_query_with_a_path_under_it(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(engine=engine, base_url=f"{control.url}/?api-version=1") as transport:
        response = await transport.request({"path": "/echo", "params": {"limit": 5}})
    assert response.json()["path"] == "/echo"
    assert response.json()["query"] == {"api-version": "1", "limit": "5"}
    assert response.url == f"{control.url}/echo?api-version=1&limit=5"


class _BadHeaderPlugin:
    @hookimpl
    def pynector_headers(self, headers: dict[str, str]) -> None:
        headers["X-Plugin"] = "caf\u00e9"


@pytest.fixture
def bad_header_plugin() -> Iterator[None]:
    name = registry.register_plugin(_BadHeaderPlugin(), name="http-test-bad-header")
    yield
    registry.unregister_plugin(name)


@pytest.mark.usefixtures("bad_header_plugin")
@pytest.mark.parametrize("backend_engine", [("asyncio", "aiohttp")], ids=["asyncio"])
async def test_a_header_a_plugin_adds_is_checked_like_the_callers_on_both_engines(
    control: ControlServer,
) -> None:
    messages = []
    for engine in ("aiohttp", "httpx2"):
        async with HTTPTransport(engine=engine, base_url=control.url) as transport:
            with pytest.raises(ConfigurationError) as caught:
                await transport.request({"path": "/echo"})
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "'pynector_headers'['X-Plugin']" in messages[0]
