"""API keys never reach a repr, a log line or an error message."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from pynector import Pynector, errors
from pynector_sdk import SDKTransport

from ._fake_api import FakeAPI
from .conftest import API_KEY, SDK_STREAM_GENERATORS

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "model": "claude-test",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}
TOKEN = "bearer-token-5e0b7c1d"


def _reprs(obj: object) -> list[str]:
    """The repr and str of an object and of every attribute it holds directly."""
    texts = [repr(obj), str(obj)]
    texts += [repr(value) for value in getattr(obj, "__dict__", {}).values()]
    texts += [repr(getattr(obj, name, None)) for name in getattr(type(obj), "__slots__", ())]
    return texts


def _assert_secret_free(texts: list[str]) -> None:
    for text in texts:
        assert API_KEY not in text
        assert TOKEN not in text


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_no_repr_shows_the_api_key(provider: str) -> None:
    client = Pynector(
        transport_type="sdk",
        provider=provider,
        api_key=API_KEY,
        default_headers={"Authorization": f"Bearer {TOKEN}"},
    )
    transport = client.transport
    texts = _reprs(client) + _reprs(transport) + _reprs(transport._errors)
    _assert_secret_free(texts)
    assert f"provider={provider!r}" in repr(transport)


def test_credentials_in_base_url_are_masked() -> None:
    transport = SDKTransport("openai", api_key=API_KEY, base_url=f"http://user:{TOKEN}@h/v1")
    _assert_secret_free(_reprs(transport))
    assert transport.base_url == "http://[redacted]:[redacted]@h/v1/"


@pytest.mark.anyio
@SDK_STREAM_GENERATORS
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_no_log_line_shows_the_api_key(
    api: FakeAPI, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path, data, base_url = (
        ("/v1/chat/completions", CHAT, api.url)
        if provider == "openai"
        else ("/v1/messages", MESSAGE, api.root)
    )
    api.fail(path, 401)
    async with Pynector(
        transport_type="sdk", provider=provider, api_key=API_KEY, base_url=base_url
    ) as client:
        with pytest.raises(errors.AuthenticationError):
            await client.request_with_retry(data, max_retries=1, retry_delay=0.01)
        await client.request(data)
        async with client.stream(data) as events:
            async for _event in events:
                pass
    assert api.last().headers  # the key did travel, in the request itself
    lines = [record.getMessage() for record in caplog.records]
    lines += [caplog.text]
    assert len(caplog.records) > 10  # the SDKs and httpx2 logged at DEBUG
    _assert_secret_free(lines)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 429, 500])
async def test_no_error_message_shows_the_api_key_even_when_the_server_echoes_it(
    api: FakeAPI, status: int
) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {API_KEY}", "type": "invalid"}}
    api.fail("/v1/chat/completions", status, body=body)
    async with Pynector(
        transport_type="sdk", provider="openai", api_key=API_KEY, base_url=api.url
    ) as client:
        with pytest.raises(errors.HTTPStatusError) as caught:
            await client.request(CHAT)
    message = str(caught.value)
    assert "Incorrect API key provided: [redacted]" in message
    _assert_secret_free([message, repr(caught.value)])


def test_configuration_errors_do_not_show_the_api_key() -> None:
    attempts: list[Callable[[], object]] = [
        lambda: SDKTransport("openai", api_key=API_KEY, bogus=API_KEY),
        lambda: SDKTransport("anthropic", api_key=API_KEY, organization=API_KEY),
        lambda: SDKTransport("openai", api_key=API_KEY, max_retries=API_KEY),
        lambda: SDKTransport("openai", api_key=API_KEY, base_url="http://x", data_residency="eu"),
        lambda: SDKTransport("anthropic", api_key=API_KEY, auth_token=TOKEN),
    ]
    for attempt in attempts:
        with pytest.raises(errors.ConfigurationError) as caught:
            attempt()
        _assert_secret_free([str(caught.value), repr(caught.value)])
