"""``config["token_limit"]`` with the real SDKs: the estimate reserved, settled to the usage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from pynector import Pynector
from pynector.concurrency import TokenBudgetError

from ._fake_api import FakeAPI
from .conftest import SDK_STREAM_GENERATORS, anthropic_client, openai_client

pytestmark = pytest.mark.anyio


def _chat(max_tokens: int) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}


@pytest.mark.parametrize("client", [openai_client, anthropic_client])
async def test_the_reported_usage_gives_back_the_unused_max_tokens(
    api: FakeAPI, client: Callable[..., Pynector[Any, Any]]
) -> None:
    # Each call reserves 1 + 150 tokens of 200 a second, and reports 7 used.
    async with client(api, config={"token_limit": "200/s"}) as pynector:
        started = anyio.current_time()
        for _ in range(6):
            await pynector.request(_chat(150))
        elapsed = anyio.current_time() - started
    assert len(api.requests) == 6
    assert elapsed < 2.5  # kept at 151 each, one call a window: over 5 s


async def test_a_call_over_the_whole_budget_is_refused_before_it_is_sent(api: FakeAPI) -> None:
    async with openai_client(api, config={"token_limit": "100/m"}) as pynector:
        with pytest.raises(TokenBudgetError, match="an estimated 121 tokens"):
            await pynector.request(_chat(120))
    assert api.requests == []


@SDK_STREAM_GENERATORS
async def test_a_stream_is_settled_to_the_usage_its_last_chunk_reports(api: FakeAPI) -> None:
    chat = {**_chat(150), "stream": True, "stream_options": {"include_usage": True}}
    async with openai_client(api, config={"token_limit": "200/s"}) as pynector:
        started = anyio.current_time()
        for _ in range(5):
            async with pynector.stream(chat) as events:
                async for _event in events:
                    pass
        elapsed = anyio.current_time() - started
    assert len(api.requests) == 5
    assert elapsed < 3.0  # kept at 151 each, one stream a window: over 4 s
