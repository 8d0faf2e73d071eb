"""The seed's SDK snippets run as written, and constructing them needs no network.

The snippets are copied verbatim from the seed document ("SDK Transport
Specific Options" and "Transport Abstraction Layer"). They only construct
clients; with every DNS lookup and socket connect refused, they still work.
"""

from __future__ import annotations

import gc
import socket
from typing import Any

import pytest

from pynector import Pynector

SDK_OPTIONS = """
# Create client with SDK transport for OpenAI
client = Pynector(
    transport_type="sdk",
    provider="openai",
    api_key="your-api-key",
    organization="your-org-id"  # Optional
)

# Create client with SDK transport for Anthropic
client = Pynector(
    transport_type="sdk",
    provider="anthropic",
    api_key="your-api-key"
)
"""

TRANSPORT_LAYER = """
# SDK Transport
client = Pynector(
    transport_type="sdk",
    provider="openai",
    api_key="your-api-key"
)
"""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every DNS lookup and outgoing connection for the test's duration."""

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError(f"network used while constructing a client: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def _run(snippet: str) -> list[Pynector]:
    made: list[Pynector] = []

    class Recording(Pynector):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    exec(compile(snippet, "<seed>", "exec"), {"Pynector": Recording})
    return made


@pytest.mark.usefixtures("no_network")
def test_the_sdk_transport_options_snippet_runs_as_written() -> None:
    openai_client, anthropic_client = _run(SDK_OPTIONS)
    assert openai_client.transport.provider == "openai"
    assert openai_client.transport.sdk_client.organization == "your-org-id"
    assert openai_client.transport.base_url == "https://api.openai.com/v1/"
    assert anthropic_client.transport.provider == "anthropic"
    assert anthropic_client.transport.base_url == "https://api.anthropic.com"
    # Dropping them unclosed, as the snippet does, leaves nothing behind to warn about.
    del openai_client, anthropic_client
    gc.collect()


@pytest.mark.usefixtures("no_network")
def test_the_transport_abstraction_layer_snippet_runs_as_written() -> None:
    (client,) = _run(TRANSPORT_LAYER)
    assert repr(client) == "<Pynector transport_type='sdk' state=open>"
    assert client.transport.sdk_client.max_retries == 0


@pytest.mark.anyio
@pytest.mark.usefixtures("no_network")
async def test_seed_clients_close_without_ever_connecting() -> None:
    for client in _run(SDK_OPTIONS) + _run(TRANSPORT_LAYER):
        async with client:
            pass
        assert "state=closed" in repr(client.transport)
