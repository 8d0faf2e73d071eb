"""Server hints with the real SDKs: the providers' rate-limit headers prevent the 429."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pynector import Pynector

from ._fake_api import FakeAPI
from .conftest import SDK_STREAM_GENERATORS, anthropic_client, openai_client

pytestmark = pytest.mark.anyio

CLIENTS = pytest.mark.parametrize(
    ("client", "style"), [(openai_client, "openai"), (anthropic_client, "anthropic")]
)


def _chat(client: Callable[..., Pynector[Any, Any]]) -> dict[str, object]:
    chat: dict[str, object] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if client is anthropic_client:
        chat["max_tokens"] = 16
    return chat


async def _send(pynector: Pynector[Any, Any], chat: dict[str, object], n: int) -> None:
    for _ in range(n):
        await pynector.request(chat)  # a 429 would raise: no retries


@CLIENTS
async def test_announced_remaining_requests_are_spread_so_no_429_comes(
    api: FakeAPI, client: Callable[..., Pynector[Any, Any]], style: str
) -> None:
    api.limit_window(2, 0.3, style=style)
    async with client(api) as pynector:
        await _send(pynector, _chat(client), 6)
    assert api.refused == 0
    assert len(api.arrivals) == 6
    assert 0.6 <= api.arrivals[-1] - api.arrivals[0] < 3.0  # three windows


@CLIENTS
async def test_announced_remaining_tokens_count_in_calls_like_the_last(
    api: FakeAPI, client: Callable[..., Pynector[Any, Any]], style: str
) -> None:
    # 14 tokens a window, 7 a call (the usage every reply reports): 2 calls a window.
    api.limit_window(14, 0.3, unit="tokens", style=style)
    async with client(api, config={"rate_limit": "50/s"}) as pynector:
        await _send(pynector, _chat(client), 6)
    assert api.refused == 0
    assert 0.6 <= api.arrivals[-1] - api.arrivals[0] < 3.0


@CLIENTS
async def test_hints_never_let_the_client_go_faster_than_rate_limit(
    api: FakeAPI, client: Callable[..., Pynector[Any, Any]], style: str
) -> None:
    api.limit_window(1000, 1.0, style=style)  # plenty announced
    async with client(api, config={"rate_limit": "10/s"}) as pynector:
        await _send(pynector, _chat(client), 6)
    assert api.refused == 0
    assert api.arrivals[-1] - api.arrivals[0] >= 5 * 0.1 * 0.9


@SDK_STREAM_GENERATORS
async def test_a_stream_reads_the_hints_too(api: FakeAPI) -> None:
    api.limit_window(2, 0.3)
    chat = {**_chat(openai_client), "stream": True}
    async with openai_client(api) as pynector:
        for _ in range(5):
            async with pynector.stream(chat) as events:
                async for _event in events:
                    pass
    assert api.refused == 0
    assert 0.6 <= api.arrivals[-1] - api.arrivals[0] < 3.0
