"""Real loopback servers for the HTTP transport's tests, started once per session.

* ``httpbin_url``: httpbin (a server nobody here wrote) on werkzeug's threaded
  WSGI server.
* ``control`` / ``other_origin``: our control server (``_control.py``), which
  counts attempts, requests in flight and connections; two instances give two
  origins.
* ``faults``: the raw-socket fault server (``_faults.py``).
* ``proxy`` / ``auth_proxy``: a real forward proxy (``_proxy.py``).
* ``tls_control``: the control server behind TLS with a trustme certificate;
  ``ca_context`` trusts it. The machine exports ``SSL_CERT_FILE``, so tests
  always pass the test CA explicitly.

Every async test runs once per engine and event loop that go together:
aiohttp and httpx2 on asyncio, httpx2 on trio (``backend_engine``). A test
takes the ``engine`` fixture and passes ``engine=engine`` to the transport.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests import _engines

from ._control import ControlServer
from ._faults import FaultServer
from ._proxy import ProxyServer

BACKEND_ENGINES = _engines.BACKEND_ENGINES
# Every async test here runs on each (event loop, HTTP engine) pair.
backend_engine = _engines.backend_engine
anyio_backend = _engines.anyio_backend
engine = _engines.engine

PROXY_USER = ("proxyuser", "proxy-pass-9f2c")

# For tests of engine="auto" (the default): what it must pick on each loop.
AUTO = [("asyncio", "auto"), ("trio", "auto")]
AUTO_PICKS = {"asyncio": "aiohttp", "trio": "httpx2"}


@pytest.fixture(scope="session")
def httpbin_url() -> Iterator[str]:
    """httpbin served by werkzeug's threaded server on an ephemeral port."""
    import httpbin  # type: ignore[import-untyped]
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        disable_nagle_algorithm = True

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, httpbin.app, threaded=True, request_handler=QuietHandler)
    server.daemon_threads = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def control() -> Iterator[ControlServer]:
    server = ControlServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def other_origin() -> Iterator[ControlServer]:
    """A second control server: a different origin (another port)."""
    server = ControlServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def faults() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy() -> Iterator[ProxyServer]:
    server = ProxyServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_proxy() -> Iterator[ProxyServer]:
    """A proxy that demands ``PROXY_USER`` credentials (407 otherwise)."""
    server = ProxyServer(credentials=PROXY_USER).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test CA's certificate as a PEM file."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def ca_context(ca_file: Path) -> ssl.SSLContext:
    """A client SSL context that trusts only the test CA."""
    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture(scope="session")
def tls_control(tls_ca: trustme.CA) -> Iterator[ControlServer]:
    """The control server over HTTPS, with a certificate for 127.0.0.1 and localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = ControlServer(tls=context).start()
    yield server
    server.stop()


async def _http2_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A tiny ASGI app that reports the HTTP version it was reached with."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps({"http_version": scope["http_version"], "path": scope["path"]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="session")
def http2_url(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """hypercorn serving HTTP/2 (and HTTP/1.1) over TLS, in a thread with its own loop."""
    import asyncio

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    folder = tmp_path_factory.mktemp("h2")
    cert = tls_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.certfile = str(folder / "cert.pem")
    config.keyfile = str(folder / "key.pem")
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(serve(_http2_app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()
    listener.detach()  # hypercorn owns the descriptor and has closed it


@pytest.fixture
def key() -> str:
    """A fresh key, so a test's counters on the control server are its own."""
    return uuid.uuid4().hex
