"""The types a client built from the SDK transport gets.

Checked by ``mypy --strict tests/sdk/test_typing.py`` (every ``assert_type``,
and each ``type: ignore`` must be needed: strict mode reports unused ones), and
run by pytest against the fake API, so the types and the values agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_type

import pytest

from pynector import Call, Pynector, Usage
from pynector.errors import ConfigurationError
from pynector_sdk import EventStream, SDKRequest, SDKTransport

from ._fake_api import FakeAPI
from .conftest import API_KEY, SDK_STREAM_GENERATORS

pytestmark = pytest.mark.anyio

CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}


@SDK_STREAM_GENERATORS
async def test_a_client_of_an_sdk_transport_takes_sdk_requests(api: FakeAPI) -> None:
    transport = SDKTransport("openai", api_key=API_KEY, base_url=api.url)
    client = Pynector(transport=transport)
    assert_type(client, Pynector[SDKRequest, Any])
    assert_type(client, Pynector[Mapping[str, Any], Any])
    async with client:
        reply = await client.request(CHAT)
        assert_type(reply, Any)  # the SDK's response type depends on the operation
        assert reply.choices[0].message.content == "Hello!"
        literal = await client.request({"model": "gpt-test", "messages": [], "max_tokens": 5})
        assert literal.object == "chat.completion"
        replies = await client.batch_request([(CHAT, {}), (CHAT, {"max_tokens": 3})])
        assert len(replies) == 2
        async with client.stream(CHAT) as events:
            assert_type(events, Any)
            chunks = [event async for event in events]
        assert chunks
        with pytest.raises(ConfigurationError, match="must be a dict"):
            await client.request("Hi")  # type: ignore[arg-type]


@SDK_STREAM_GENERATORS
async def test_the_transport_on_its_own_is_typed(api: FakeAPI) -> None:
    async with SDKTransport("openai", api_key=API_KEY, base_url=api.url) as transport:
        assert_type(transport, SDKTransport)
        assert_type(await transport.request(CHAT), Any)
        async with transport.stream(CHAT) as events:
            assert_type(events, EventStream)
            assert [event async for event in events]
        call: Call[SDKRequest] = Call(CHAT)
        assert_type(transport.limit_key(call), str)
        assert_type(transport.estimate_tokens(call), int)
        assert_type(transport.replayable(call), bool)
        assert_type(await transport.handle_request(call), Any)
        assert_type(call.usage, Usage | None)
        assert call.usage == Usage(5, 2)


def test_a_client_created_by_name_stays_untyped() -> None:
    client = Pynector(transport_type="sdk", provider="openai", api_key=API_KEY)
    assert_type(client, Pynector[Any, Any])
