"""Private APIs of the HTTP engines' libraries: canaries that fail loudly when they change,
and the fallback that keeps requests working if they do.

The aiohttp engine wraps ``TCPConnector._get(key, traces)`` and reads the idle
pool ``_conns`` to drop pooled connections the server closed while idle. A
canary below fails, naming the API, when an aiohttp release changes either; the
fallback tests change them on a real engine and check that requests still go
through (only the idle check is lost). The engine also calls
``ClientSession._request`` directly and puts its User-Agent among
``ClientRequest.DEFAULT_HEADERS``; each has a canary and a fallback test.
Proxy routing uses pynector-http's own pattern matcher, never ``httpx2._utils``.
"""

from __future__ import annotations

import ast
import collections
import importlib
import inspect
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.client_proto import ResponseHandler

import pynector_http
from pynector_http import HTTPTransport, _aiohttp_engine
from pynector_http._aiohttp_engine import (
    AiohttpEngine,
    pool_hook_available,
    request_coroutine_available,
)
from pynector_http._patterns import (
    ProxyPattern,
    environment_has_proxies,
    environment_proxies,
    route_table,
)

from ._control import ControlServer

pytestmark = pytest.mark.anyio
ASYNCIO_AIOHTTP = pytest.mark.parametrize(
    "backend_engine", [("asyncio", "aiohttp")], ids=["asyncio-aiohttp"]
)


def _engine(transport: HTTPTransport) -> AiohttpEngine:
    engine = transport._engine
    assert isinstance(engine, AiohttpEngine)
    return engine


# -- canaries ----------------------------------------------------------------------------


def test_canary_aiohttp_tcpconnector_get_is_a_coroutine_of_key_and_traces() -> None:
    get = getattr(aiohttp.TCPConnector, "_get", None)
    assert get is not None, f"aiohttp {aiohttp.__version__} has no TCPConnector._get"
    assert inspect.iscoroutinefunction(get), "TCPConnector._get is no longer a coroutine"
    assert list(inspect.signature(get).parameters) == ["self", "key", "traces"], (
        f"aiohttp {aiohttp.__version__} changed TCPConnector._get's signature to "
        f"{inspect.signature(get)}"
    )
    assert pool_hook_available()


def test_canary_aiohttp_session_request_wraps_a_request_coroutine_with_our_keywords() -> None:
    request = getattr(aiohttp.ClientSession, "_request", None)
    assert request is not None, f"aiohttp {aiohttp.__version__} has no ClientSession._request"
    assert inspect.iscoroutinefunction(request), "ClientSession._request is no longer a coroutine"
    assert request_coroutine_available(), (
        f"aiohttp {aiohttp.__version__} changed ClientSession._request's keywords: "
        f"{inspect.signature(request)}"
    )


def test_canary_aiohttp_client_request_has_a_mapping_of_default_headers() -> None:
    defaults = getattr(aiohttp.ClientRequest, "DEFAULT_HEADERS", None)
    assert isinstance(defaults, dict), (
        f"aiohttp {aiohttp.__version__} changed ClientRequest.DEFAULT_HEADERS: {defaults!r}"
    )


async def _agents(control: ControlServer) -> list[str]:
    """The User-Agent each of four requests arrived with: GET, POST (no type), the caller's two."""
    async with HTTPTransport(engine="aiohttp", base_url=control.url) as transport:
        replies = [
            await transport.request({"path": "/echo"}),
            await transport.request({"path": "/echo", "method": "POST", "content": b"x"}),
            await transport.request({"path": "/echo", "headers": {"user-agent": "mine/1"}}),
            await transport.request(
                {
                    "path": "/echo",
                    "method": "POST",
                    "content": b"x",
                    "headers": {"User-Agent": "mine/2"},
                }
            ),
        ]
    received = [reply.json()["headers"] for reply in replies]
    return [
        value
        for headers in received
        for name, value in headers.items()
        if name.lower() == "user-agent"
    ]


@ASYNCIO_AIOHTTP
@pytest.mark.parametrize("defaults", ["class attribute", "missing"])
async def test_the_user_agent_is_ours_unless_the_caller_sends_one(
    control: ControlServer, monkeypatch: pytest.MonkeyPatch, defaults: str
) -> None:
    if defaults == "missing":  # an aiohttp without it: the session's default headers carry it
        monkeypatch.setattr(_aiohttp_engine, "_with_user_agent", lambda user_agent: None)
    agents = await _agents(control)
    ours = f"pynector-http/{pynector_http.__version__} aiohttp/{aiohttp.__version__}"
    assert agents == [ours, ours, "mine/1", "mine/2"]


@ASYNCIO_AIOHTTP
async def test_canary_aiohttp_idle_pool_is_a_mapping_of_deques_of_protocol_and_time(
    control: ControlServer,
) -> None:
    async with HTTPTransport(engine="aiohttp", base_url=control.url) as transport:
        await transport.request({"path": "/echo"})
        connector = _engine(transport)._direct.connector
        pool = getattr(connector, "_conns", None)
        assert isinstance(pool, dict), f"aiohttp {aiohttp.__version__} changed _conns: {pool!r}"
        (idle,) = pool.values()
        assert isinstance(idle, collections.deque)
        ((protocol, released_at),) = idle
        assert isinstance(protocol, ResponseHandler)
        assert isinstance(released_at, float)
        assert _engine(transport).idle_check


@pytest.mark.parametrize("module", ["_aiohttp_engine", "_patterns", "_httpx2_engine", "_options"])
def test_no_module_imports_a_private_httpx2_module(module: str) -> None:
    tree = ast.parse(inspect.getsource(importlib.import_module(f"pynector_http.{module}")))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.startswith("httpx2._")], imported


# -- fallbacks ---------------------------------------------------------------------------


@ASYNCIO_AIOHTTP
async def test_a_changed_request_coroutine_degrades_to_session_request(
    control: ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = aiohttp.ClientSession._request

    async def changed(self: Any, method: str, url: Any, **options: Any) -> Any:
        return await original(self, method, url, **options)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", changed)
    assert not request_coroutine_available()
    async with HTTPTransport(engine="aiohttp", base_url=control.url) as transport:
        assert _engine(transport)._request is aiohttp.ClientSession.request
        responses = [
            await transport.request({"path": "/echo"}),
            await transport.request({"path": "/echo", "method": "POST", "content": b"x"}),
        ]
    assert [response.status_code for response in responses] == [200, 200]


@ASYNCIO_AIOHTTP
async def test_a_changed_get_signature_degrades_to_aiohttps_own_connector(
    control: ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = aiohttp.TCPConnector._get

    async def changed(self: Any, key: Any, traces: Any, *, hint: object = None) -> Any:
        return await original(self, key, traces)

    monkeypatch.setattr(aiohttp.TCPConnector, "_get", changed)
    assert not pool_hook_available()
    async with HTTPTransport(engine="aiohttp", base_url=control.url) as transport:
        first = await transport.request({"path": "/echo"})
        second = await transport.request({"path": "/echo"})  # from the pool
        assert not _engine(transport).idle_check
        assert type(_engine(transport)._direct.connector) is aiohttp.TCPConnector
    assert first.status_code == second.status_code == 200


class _Reshaped(collections.deque):  # type: ignore[type-arg]
    """A pool deque whose entries look different from outside, as a new aiohttp might store."""

    def append(self, item: Any) -> None:
        super().append((*item, "new-field"))

    def popleft(self) -> Any:
        return super().popleft()[:2]


@ASYNCIO_AIOHTTP
async def test_a_reshaped_idle_pool_turns_the_check_off_and_requests_go_on(
    control: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with HTTPTransport(engine="aiohttp", base_url=control.url) as transport:
        engine = _engine(transport)
        connector = engine._direct.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        connector._conns = collections.defaultdict(_Reshaped)
        with caplog.at_level(logging.WARNING, logger="pynector.http"):
            responses = [await transport.request({"path": "/echo"}) for _ in range(3)]
        assert not engine.idle_check
        # Back to aiohttp's own shape, so that aiohttp itself can close the pool.
        reshaped = connector._conns.items()
        connector._conns = collections.defaultdict(
            collections.deque,
            {key: collections.deque(entry[:2] for entry in idle) for key, idle in reshaped},
        )
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert any("changed its connection pool" in record.getMessage() for record in caplog.records)


@ASYNCIO_AIOHTTP
async def test_a_missing_idle_pool_turns_the_check_off_when_the_pool_opens(
    control: ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = aiohttp.TCPConnector.__init__

    def without_pool(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        # A new aiohttp that keeps its pool elsewhere: _conns is not a mapping.
        self._conns = _NotAMapping(self._conns)

    monkeypatch.setattr(aiohttp.TCPConnector, "__init__", without_pool)
    async with HTTPTransport(engine="aiohttp", base_url=control.url) as transport:
        assert not _engine(transport).idle_check
        responses = [await transport.request({"path": "/echo"}) for _ in range(2)]
    assert [response.status_code for response in responses] == [200, 200]


class _NotAMapping:
    """Delegates to aiohttp's pool, but is not a ``dict``."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def __getitem__(self, key: Any) -> Any:
        return self._pool[key]

    def __delitem__(self, key: Any) -> None:
        del self._pool[key]

    def __bool__(self) -> bool:
        return bool(self._pool)

    def __iter__(self) -> Any:
        return iter(self._pool)


# -- proxy routing: pynector-http's own pattern matcher ------------------------------------

ROUTES = [
    # (pattern, scheme, host, port, matches)
    ("all://", "http", "example.com", 80, True),
    ("http://", "https", "example.com", 443, False),
    ("https://", "https", "example.com", 443, True),
    ("all://example.com", "http", "example.com", 8080, True),
    ("all://example.com", "http", "www.example.com", 80, False),
    ("all://*.example.com", "https", "www.example.com", 443, True),
    ("all://*.example.com", "https", "example.com", 443, False),
    ("all://*example.com", "https", "example.com", 443, True),
    ("all://*example.com", "https", "api.example.com", 443, True),
    ("all://*example.com", "https", "wwwexample.com", 443, False),
    ("https://example.com:1234", "https", "example.com", 1234, True),
    ("https://example.com:1234", "https", "example.com", 443, False),
    ("https://example.com:443", "https", "example.com", 443, True),
    ("all://192.168.0.0/16", "http", "192.168.3.4", 80, True),
    ("all://192.168.0.0/16", "http", "10.0.0.1", 80, False),
    ("all://192.168.0.0/16", "http", "example.com", 80, False),
    ("all://[::1]", "http", "::1", 80, True),
    ("all://[fd00::]/8", "http", "fd12::1", 80, True),
    ("all://localhost", "http", "LOCALHOST", 80, True),
]


@pytest.mark.parametrize(("pattern", "scheme", "host", "port", "expected"), ROUTES)
def test_proxy_patterns_match_as_httpx2_mounts_do(
    pattern: str, scheme: str, host: str, port: int, expected: bool
) -> None:
    assert ProxyPattern(pattern).matches(scheme, host, port) is expected


def test_the_most_specific_proxy_pattern_comes_first() -> None:
    table = route_table(
        {
            "all://": "http://any",
            "https://": "http://tls",
            "all://*example.com": "http://wild",
            "all://api.example.com": "http://exact",
            "all://10.0.0.0/8": "http://wide",
            "all://10.1.0.0/16": "http://narrow",
            "all://api.example.com:8443": "http://port",
        }
    )
    assert [target for _, target in table] == [
        "http://port",
        "http://exact",
        "http://wild",
        "http://narrow",
        "http://wide",
        "http://tls",
        "http://any",
    ]


def test_a_pattern_without_a_url_form_is_refused() -> None:
    with pytest.raises(ValueError, match="'http://'"):
        ProxyPattern("http")


def test_environment_proxies_follow_curls_no_proxy_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert not environment_has_proxies()
    monkeypatch.setenv("HTTP_PROXY", "proxy.test:3128")
    assert environment_has_proxies()
    monkeypatch.setenv("HTTPS_PROXY", "http://secure.test:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal.test,example.com,10.0.0.0/8,::1,[")
    assert environment_proxies() == {
        "http://": "http://proxy.test:3128",
        "https://": "http://secure.test:3128",
        "all://localhost": None,
        "all://*.internal.test": None,
        "all://*example.com": None,
        "all://10.0.0.0/8": None,
        "all://[::1]": None,
    }
    monkeypatch.setenv("NO_PROXY", "*")
    assert environment_proxies() == {}
