"""SDK exceptions map onto pynector.errors by type and status, keeping Retry-After."""

from __future__ import annotations

import email.utils
import socket
import time
from typing import Any

import pytest

from pynector import Pynector, errors
from pynector_sdk import SDKTransport

from ._fake_api import FakeAPI
from .conftest import API_KEY

CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "model": "claude-test",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Hi"}],
}

# status -> (pynector class, retryable)
TABLE = {
    400: (errors.BadRequestError, False),
    401: (errors.AuthenticationError, False),
    403: (errors.AuthenticationError, False),
    404: (errors.NotFoundError, False),
    408: (errors.HTTPStatusError, True),
    409: (errors.ConflictError, True),  # the APIs' lock timeout: the SDKs retry it
    413: (errors.HTTPStatusError, False),
    422: (errors.UnprocessableEntityError, False),
    429: (errors.RateLimitError, True),
    500: (errors.ServerError, True),
    503: (errors.ServerError, True),
    529: (errors.ServerError, True),
}


def _client(api: FakeAPI, provider: str, **options: Any) -> tuple[Pynector, dict[str, Any]]:
    if provider == "openai":
        client = Pynector(
            transport_type="sdk", provider="openai", api_key=API_KEY, base_url=api.url, **options
        )
        return client, CHAT
    client = Pynector(
        transport_type="sdk", provider="anthropic", api_key=API_KEY, base_url=api.root, **options
    )
    return client, MESSAGE


def _cause_names(error: BaseException) -> list[str]:
    names = []
    cause = error.__cause__
    while cause is not None:
        names.append(type(cause).__name__)
        cause = cause.__cause__
    return names


def _path(provider: str) -> str:
    return "/v1/chat/completions" if provider == "openai" else "/v1/messages"


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("status", sorted(TABLE))
async def test_status_errors_map_by_status(api: FakeAPI, provider: str, status: int) -> None:
    expected, retryable = TABLE[status]
    api.fail(_path(provider), status)
    client, data = _client(api, provider)
    async with client:
        with pytest.raises(errors.HTTPStatusError) as caught:
            await client.request(data)
    error = caught.value
    assert type(error) is expected
    assert error.status_code == status
    assert error.retryable is retryable
    assert error.retry_after is None
    assert error.response.status_code == status
    assert type(error.__cause__).__module__.startswith(provider)
    assert str(status) in str(error)
    assert api.count() == 1


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "9", "retry-after-ms": "2500"}, 2.5),
        ({"retry-after": "2", "retry-after-ms": "soon"}, 2.0),
        ({"retry-after": "-5"}, 0.0),
    ],
    ids=["seconds", "decimal-seconds", "milliseconds", "milliseconds-win", "bad-ms", "negative"],
)
async def test_rate_limits_carry_the_servers_retry_after(
    api: FakeAPI, provider: str, headers: dict[str, str], expected: float
) -> None:
    api.fail(_path(provider), 429, headers=headers)
    client, data = _client(api, provider)
    async with client:
        with pytest.raises(errors.RateLimitError) as caught:
            await client.request(data)
    assert caught.value.retryable is True
    assert caught.value.retry_after == pytest.approx(expected)


@pytest.mark.anyio
async def test_retry_after_as_an_http_date(api: FakeAPI) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    api.fail("/v1/messages", 429, headers={"retry-after": when})
    client, data = _client(api, "anthropic")
    async with client:
        with pytest.raises(errors.RateLimitError) as caught:
            await client.request(data)
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


@pytest.mark.anyio
async def test_a_server_error_keeps_its_retry_after(api: FakeAPI) -> None:
    api.fail("/v1/chat/completions", 503, headers={"retry-after": "4"})
    client, data = _client(api, "openai")
    async with client:
        with pytest.raises(errors.ServerError) as caught:
            await client.request(data)
    assert caught.value.retry_after == 4.0


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_connection_failures_are_retryable_connection_errors(provider: str) -> None:
    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}" + ("/v1" if provider == "openai" else "")
    data = CHAT if provider == "openai" else MESSAGE
    async with Pynector(
        transport_type="sdk", provider=provider, api_key=API_KEY, base_url=base_url
    ) as client:
        with pytest.raises(errors.ConnectionError) as caught:
            await client.request(data)
    assert caught.value.retryable is True
    assert type(caught.value.__cause__).__name__ == "APIConnectionError"
    assert f"127.0.0.1:{port}" in str(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_the_sdks_own_timeout_is_a_pynector_timeout(api: FakeAPI, provider: str) -> None:
    client, data = _client(api, provider, timeout=0.3)
    async with client:
        with pytest.raises(errors.TimeoutError) as caught:
            await client.request({**data, "model": "hold"})
    assert caught.value.retryable is True
    assert isinstance(caught.value, TimeoutError)
    assert "APITimeoutError" in _cause_names(caught.value)


@pytest.mark.anyio
async def test_the_clients_deadline_cancels_the_sdk_call(api: FakeAPI) -> None:
    client, data = _client(api, "openai")
    async with client:
        with pytest.raises(TimeoutError):
            await client.request({**data, "model": "hold"}, timeout=0.3)
        api.release()
        # The pool survives the cancellation.
        assert (await client.request(data)).object == "chat.completion"


@pytest.mark.anyio
async def test_unreadable_json_is_a_protocol_error(api: FakeAPI) -> None:
    api.fail("/v1/chat/completions", 200, body=b"{not json")
    client, data = _client(api, "openai")
    async with client:
        with pytest.raises(errors.ProtocolError, match="cannot read"):
            await client.request(data)


@pytest.mark.anyio
async def test_missing_required_arguments_are_a_configuration_error(api: FakeAPI) -> None:
    transport = SDKTransport("openai", api_key=API_KEY, base_url=api.url)
    async with transport:
        with pytest.raises(errors.ConfigurationError, match="rejected its arguments") as caught:
            await transport.request({"model": "gpt-test"})  # no messages
    assert isinstance(caught.value.__cause__, TypeError)
    assert api.count() == 0


@pytest.mark.anyio
async def test_non_sdk_exceptions_propagate_unchanged(api: FakeAPI) -> None:
    class Boom(Exception):
        pass

    def explode() -> str:
        raise Boom("from the api_key provider")

    async def key() -> str:
        return explode()

    transport = SDKTransport("openai", api_key=key, base_url=api.url)
    async with transport:
        with pytest.raises(Boom):
            await transport.request(CHAT)
