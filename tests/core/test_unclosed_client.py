"""A client dropped without ``aclose()`` says so, in pynector's words; a closed one does not."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from pynector import Pynector
from pynector.testing import MockTransport

pytestmark = pytest.mark.anyio


def _echo(data: Any, **options: Any) -> Any:
    return data


def _drop(held: list[Pynector]) -> None:
    """Drop the last reference to the clients in ``held`` and collect them."""
    held.clear()
    gc.collect()


async def test_a_connected_client_dropped_unclosed_warns_naming_aclose() -> None:
    held = [Pynector(transport=MockTransport(_echo))]
    assert await held[0].request({"n": 1}) == {"n": 1}
    with pytest.warns(ResourceWarning, match=r"unclosed Pynector client") as record:
        _drop(held)
    assert len(record) == 1
    message = str(record[0].message)
    assert "await client.aclose()" in message
    assert "async with Pynector(...) as client:" in message


async def test_a_closed_or_never_used_client_does_not_warn() -> None:
    # filterwarnings = error: a warning from any of these would fail the test.
    async with Pynector(transport=MockTransport(_echo)) as entered:
        await entered.request({"n": 1})
    closed = Pynector(transport=MockTransport(_echo))
    await closed.request({"n": 2})
    await closed.aclose()
    never_used = Pynector(transport=MockTransport(_echo))
    del entered, closed, never_used
    gc.collect()
