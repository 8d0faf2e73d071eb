"""The engines: which one a transport gets, and the parts of the contract that differ most.

Every other test of this folder runs on both engines; the tests here check the
choice itself (``engine="auto"``, ``"aiohttp"``, ``"httpx2"``), the deadline a
transport enforces itself on aiohttp (``handles_deadline``), and behaviours where aiohttp
and httpx2 differ out of the box and the transport makes them agree: redirects
that change the method, cookies, proxies from the environment, pool timeouts,
undecodable bodies, and the secrets in a chained engine exception.
"""

from __future__ import annotations

import subprocess
import sys
import traceback
from collections.abc import AsyncIterator

import anyio
import pytest

from pynector import Pynector
from pynector.errors import ConfigurationError, ProtocolError, TimeoutError, TransportError
from pynector_http import HTTPTransport

from ._control import ControlServer
from ._faults import FaultServer
from ._proxy import ProxyServer
from .conftest import AUTO, AUTO_PICKS

pytestmark = pytest.mark.anyio

SECRET = "qt-0c3e9a7d51f2"


@pytest.mark.parametrize("backend_engine", AUTO, ids=["-".join(pair) for pair in AUTO])
async def test_auto_picks_aiohttp_on_asyncio_and_httpx2_on_trio_when_the_pool_opens(
    control: ControlServer, anyio_backend: str
) -> None:
    transport = HTTPTransport(base_url=control.url)
    before = (transport.engine, repr(transport))
    async with transport:
        during = (transport.engine, repr(transport))
        response = await transport.request({"path": "/echo"})
    picked = AUTO_PICKS[anyio_backend]
    assert before == ("auto", f"<HTTPTransport base_url={control.url!r} engine=auto closed>")
    assert during == (picked, f"<HTTPTransport base_url={control.url!r} engine={picked} open>")
    assert transport.engine == "auto"
    assert response.json()["headers"]["User-Agent"].endswith(
        " aiohttp/" + __import__("aiohttp").__version__
        if picked == "aiohttp"
        else " httpx2/" + __import__("httpx2").__version__
    )


@pytest.mark.parametrize("backend_engine", [("trio", "aiohttp")], ids=["trio-aiohttp"])
async def test_aiohttp_on_trio_is_a_configuration_error_that_names_the_fix(
    control: ControlServer, engine: str
) -> None:
    with pytest.raises(ConfigurationError) as direct:
        async with HTTPTransport(base_url=control.url, engine=engine):
            pass
    client = Pynector(transport_type="http", base_url=control.url, engine=engine)
    with pytest.raises(ConfigurationError) as through_the_client:
        await client.request({"path": "/echo"})
    await client.aclose()
    for caught in (direct, through_the_client):
        assert "engine='aiohttp' runs on asyncio only" in str(caught.value)
        assert "pass engine='httpx2'" in str(caught.value)


def test_aiohttp_is_imported_only_when_an_asyncio_transport_picks_it() -> None:
    script = (
        "import asyncio, sys\n"
        "import pynector_http\n"
        "assert 'aiohttp' not in sys.modules, 'imported by pynector_http'\n"
        "async def main():\n"
        "    async with pynector_http.HTTPTransport(engine='httpx2'):\n"
        "        assert 'aiohttp' not in sys.modules, 'imported for httpx2'\n"
        "    async with pynector_http.HTTPTransport() as transport:\n"
        "        assert 'aiohttp' in sys.modules and transport.engine == 'aiohttp'\n"
        "asyncio.run(main())\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


# -- the client's deadline: enforced by aiohttp's own timer, or the client's cancel scope --


async def test_a_client_request_returns_the_response_before_the_deadline(
    control: ControlServer, engine: str
) -> None:
    async with Pynector(transport=HTTPTransport(base_url=control.url, engine=engine)) as client:
        # Only aiohttp ends a request at a deadline by itself (the client then sets no scope).
        assert client.transport.handles_deadline is (engine == "aiohttp")
        response = await client.request({"path": "/echo", "params": {"a": 1}}, timeout=5.0)
    assert response.json()["query"] == {"a": "1"}
    assert client.transport.handles_deadline is False  # the pool is closed


@pytest.mark.parametrize(("method", "retryable"), [("GET", True), ("POST", False)])
async def test_a_client_request_times_out_at_its_deadline_retryable_only_if_repeatable(
    control: ControlServer, key: str, engine: str, method: str, retryable: bool
) -> None:
    transport = HTTPTransport(base_url=control.url, engine=engine, max_connections=1)
    async with Pynector(transport=transport) as client:
        start = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(TimeoutError) as caught:
            await client.request(
                {"path": "/hold", "method": method, "params": {"key": key}}, timeout=0.3
            )
        elapsed = anyio.current_time() - start
        assert control.wait_for(lambda: control.key(key).disconnects == 1)
        with anyio.fail_after(5):  # the pool's one connection slot is free again
            healthy = await client.request({"path": "/echo"}, timeout=5.0)
    assert str(caught.value).startswith("request timed out after 0.3 s; pass a larger timeout=")
    assert caught.value.timeout == 0.3
    assert caught.value.retryable is retryable
    assert 0.25 <= elapsed < 3
    assert healthy.status_code == 200


async def test_a_client_request_deadline_covers_every_redirect_hop(
    control: ControlServer, key: str, engine: str
) -> None:
    hold = f"/hold?key={key}"
    transport = HTTPTransport(base_url=control.url, engine=engine, follow_redirects=True)
    async with Pynector(transport=transport) as client:
        with anyio.fail_after(5), pytest.raises(TimeoutError) as caught:
            await client.request({"path": "/redirect", "params": {"to": hold}}, timeout=0.3)
    assert control.wait_for(lambda: control.key(key).disconnects == 1)
    assert caught.value.retryable is True  # a GET


# -- behaviours the two engines are made to agree on ----------------------------------


async def test_303_turns_a_post_into_a_get_without_its_body(
    control: ControlServer, key: str, engine: str
) -> None:
    async with HTTPTransport(
        base_url=control.url, engine=engine, follow_redirects=True
    ) as transport:
        response = await transport.request(
            {
                "path": "/redirect",
                "method": "POST",
                "params": {"status": 303, "to": f"/echo?key={key}"},
                "json": {"order": 1},
            }
        )
        kept = await transport.request(
            {
                "path": "/redirect",
                "method": "POST",
                "params": {"status": 307, "to": f"/echo?key={key}-kept"},
                "json": {"order": 1},
            }
        )
    assert response.json()["method"] == "GET"
    assert response.json()["body"] == ""
    assert response.request is not None
    assert response.request.method == "GET"
    assert kept.json()["method"] == "POST"
    assert kept.json()["body"] == '{"order":1}'


async def test_a_streamed_body_is_not_sent_twice_on_a_307(
    control: ControlServer, engine: str
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    async with HTTPTransport(
        base_url=control.url, engine=engine, follow_redirects=True
    ) as transport:
        with pytest.raises(TransportError, match="cannot be sent twice"):
            await transport.request(
                {
                    "path": "/redirect",
                    "method": "PUT",
                    "params": {"status": 307, "to": "/echo"},
                    "content": body(),
                }
            )


async def test_cookies_set_by_a_server_are_sent_back_to_it(httpbin_url: str, engine: str) -> None:
    async with HTTPTransport(base_url=httpbin_url, engine=engine) as transport:
        redirected = await transport.request(
            {"path": "/cookies/set", "params": {"flavour": "oat"}}, follow_redirects=True
        )
        later = await transport.request({"path": "/cookies"})
    assert redirected.json() == {"cookies": {"flavour": "oat"}}  # sent on the redirect too
    assert later.json() == {"cookies": {"flavour": "oat"}}


async def test_proxies_from_the_environment_and_no_proxy(
    control: ControlServer,
    proxy: ProxyServer,
    key: str,
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    before = len(proxy.seen)
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        await transport.request({"path": "/echo", "params": {"key": key}})
    through = len(proxy.seen) - before
    async with HTTPTransport(base_url=control.url, engine=engine, trust_env=False) as transport:
        await transport.request({"path": "/echo"})
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        await transport.request({"path": "/echo"})
    assert through == 1
    assert len(proxy.seen) - before == 1  # trust_env=False and NO_PROXY went direct
    assert control.key(key).headers[-1]["Via"] == "1.1 test-proxy"


async def test_no_free_connection_in_time_is_a_retryable_timeout(
    control: ControlServer, key: str, engine: str
) -> None:
    async with HTTPTransport(
        base_url=control.url, engine=engine, max_connections=1, timeout={"pool": 0.2}
    ) as transport:
        async with transport.stream({"path": "/hold", "params": {"key": key}}):
            with anyio.fail_after(5), pytest.raises(TimeoutError) as caught:
                await transport.request({"path": "/echo", "method": "POST"})
        with anyio.fail_after(5):
            healthy = await transport.request({"path": "/echo"})
    assert caught.value.retryable is True  # nothing reached the server
    assert healthy.status_code == 200


async def test_an_undecodable_body_is_a_protocol_error(faults: FaultServer, engine: str) -> None:
    async with HTTPTransport(base_url=faults.url, engine=engine) as transport:
        with anyio.fail_after(5), pytest.raises(ProtocolError) as caught:
            await transport.request({"path": "/bad-gzip"})
    assert "could not be decoded" in str(caught.value)
    assert caught.value.retryable is False


async def test_a_chained_engine_error_shows_no_secret_from_the_url(
    faults: FaultServer, engine: str
) -> None:
    async with HTTPTransport(base_url=faults.url, engine=engine) as transport:
        with anyio.fail_after(5), pytest.raises(ProtocolError) as caught:
            await transport.request({"path": "/malformed-status", "params": {"token": SECRET}})
    shown = "".join(traceback.format_exception(caught.value))
    assert type(caught.value.__cause__).__module__.startswith(engine)
    assert SECRET not in shown
    assert "token=[redacted]" in str(caught.value)
