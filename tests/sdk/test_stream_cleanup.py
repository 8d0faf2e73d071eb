"""Leaving a stream, early or at its end, leaves nothing open for the garbage collector.

No warning filter here: on trio, an SDK generator that was left suspended would
be reported (a ResourceWarning turned into an error). The one exception, the
openai SDK's own ``break`` at ``data: [DONE]``, is covered in test_streaming.py.
"""

from __future__ import annotations

import gc

import pytest

from pynector import Pynector

from ._fake_api import FakeAPI
from .conftest import API_KEY

pytestmark = pytest.mark.anyio

MESSAGE = {
    "model": "claude-test",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}
CASES = {
    "anthropic-messages": ("anthropic", MESSAGE),
    "anthropic-stream-helper": ("anthropic", {"operation": "messages.stream", **MESSAGE}),
    "openai-responses": ("openai", {"operation": "responses.create", "model": "m", "input": "Hi"}),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("read", [1, 2, None], ids=["first-event", "two-events", "to-the-end"])
async def test_streams_end_cleanly(api: FakeAPI, case: str, read: int | None) -> None:
    provider, data = CASES[case]
    base_url = api.url if provider == "openai" else api.root
    received = 0
    async with Pynector(
        transport_type="sdk", provider=provider, api_key=API_KEY, base_url=base_url
    ) as client:
        async with client.stream(data) as events:
            async for _event in events:
                received += 1
                if received == read:
                    break
    gc.collect()
    if read is None:
        assert received >= 4
    else:
        assert received == read


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_abandoned_endless_stream_ends_cleanly(api: FakeAPI, provider: str) -> None:
    base_url = api.url if provider == "openai" else api.root
    data = {"model": "endless", "max_tokens": 16, "messages": []}
    if provider == "openai":
        del data["max_tokens"]
    async with Pynector(
        transport_type="sdk", provider=provider, api_key=API_KEY, base_url=base_url
    ) as client:
        async with client.stream(data) as events:
            async for _event in events:
                break
    gc.collect()
    assert api.count() == 1
