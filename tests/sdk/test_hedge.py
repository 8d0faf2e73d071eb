"""An SDK call is never hedged: the API bills it and may act on it twice."""

from __future__ import annotations

import anyio
import pytest

from pynector import Pynector

from ._fake_api import FakeAPI
from .conftest import API_KEY

pytestmark = pytest.mark.anyio

HEDGE = 0.05


async def test_a_slow_sdk_call_is_not_hedged(api: FakeAPI) -> None:
    client = Pynector(
        transport_type="sdk",
        provider="openai",
        api_key=API_KEY,
        base_url=api.url,
        config={"hedge_after": HEDGE},
    )
    data = {"model": "hold", "messages": [{"role": "user", "content": "Hi"}]}
    async with client, anyio.create_task_group() as group:
        group.start_soon(client.request, data)
        assert await anyio.to_thread.run_sync(api.wait_in_flight, 1)
        # Ten times hedge_after later, still the one copy: a second never came.
        assert not await anyio.to_thread.run_sync(api.wait_in_flight, 2, HEDGE * 10)
        api.release()
    assert api.count("/v1/chat/completions") == 1
