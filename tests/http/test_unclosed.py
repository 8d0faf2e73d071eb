"""A client dropped without ``aclose()``: pynector's warning, and no socket left open."""

from __future__ import annotations

import gc

import anyio
import pytest

from pynector import Pynector

from ._control import ControlServer

pytestmark = pytest.mark.anyio


def _drop(held: list[Pynector]) -> None:
    """Drop the last reference to the clients in ``held`` and collect them."""
    held.clear()
    gc.collect()


@pytest.mark.parametrize("backend_engine", [("asyncio", "aiohttp")], ids=["asyncio-aiohttp"])
async def test_an_unclosed_client_warns_in_pynectors_words_and_its_sockets_close(
    engine: str,
) -> None:
    server = ControlServer().start()  # its own, so its connection count is this test's
    try:
        held = [Pynector(transport_type="http", base_url=server.url, engine=engine)]
        await held[0].request({"path": "/echo"})
        assert server.open_connections == 1  # pooled, idle
        with pytest.warns(ResourceWarning) as record:
            _drop(held)
        # Exactly one warning, pynector's: none of aiohttp's session or connector.
        assert [str(warning.message) for warning in record] == [
            "unclosed Pynector client <Pynector transport_type='http' state=open>: its "
            "transport was left connected. Close the client with `await client.aclose()`, "
            "or use it as `async with Pynector(...) as client:`"
        ]
        # The warning held the client; released, its engine closes the pool without a
        # word (any other warning would fail this test: filterwarnings = error).
        del record
        gc.collect()
        # Waited for in a thread: the event loop must run to close the socket.
        closed = await anyio.to_thread.run_sync(
            server.wait_for, lambda: server.open_connections == 0
        )
        assert closed
    finally:
        server.stop()


async def test_a_closed_or_never_connected_client_does_not_warn(
    control: ControlServer, engine: str
) -> None:
    # filterwarnings = error: a warning from either client would fail the test.
    async with Pynector(transport_type="http", base_url=control.url, engine=engine) as client:
        await client.request({"path": "/echo"})
    unused = Pynector(transport_type="http", base_url=control.url, engine=engine)
    del client, unused
    gc.collect()
