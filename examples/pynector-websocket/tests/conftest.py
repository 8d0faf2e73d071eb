"""Real WebSocket servers on 127.0.0.1 for the transport's tests.

``ws_server`` is hypercorn (an ASGI server) serving ``websocket_servers.app``
in a thread with its own event loop; ``ping_server`` runs
``websocket_servers.serve_pings``, which pings the client before it answers.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from websocket_servers import Server, app, serve_pings


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return str(request.param)


@pytest.fixture(scope="session")
def ws_server() -> Iterator[Server]:
    """hypercorn on 127.0.0.1 and an ephemeral port, in a thread with its own loop."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = Server(f"ws://127.0.0.1:{listener.getsockname()[1]}")
    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(serve(app(server), config, shutdown_trigger=stop.wait))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield server
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()
    listener.detach()  # hypercorn owns the descriptor and has closed it


@pytest.fixture
def ping_server() -> Iterator[tuple[str, list[bytes]]]:
    """A one-connection wsproto server that pings before each reply; yields (url, pongs)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    pongs: list[bytes] = []
    thread = threading.Thread(target=serve_pings, args=(listener, pongs), daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{listener.getsockname()[1]}/", pongs
    thread.join(10)
    listener.close()
