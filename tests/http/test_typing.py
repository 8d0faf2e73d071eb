"""A client built from an ``HTTPTransport`` is typed: its request dict and its reply.

Checked twice: ``mypy --strict`` reads this file (a misspelt key is a
``typeddict-unknown-key`` error, which the ``type: ignore`` below needs, or
strict mypy's ``warn_unused_ignores`` fails), and pytest runs it against a
real loopback server.
"""

from __future__ import annotations

from typing import assert_type

import pytest

from pynector import Pynector
from pynector.errors import ConfigurationError
from pynector_http import HTTPRequest, HTTPTransport, Response

from ._control import ControlServer

pytestmark = pytest.mark.anyio


async def test_a_client_of_an_http_transport_returns_responses_and_checks_request_keys(
    control: ControlServer, engine: str
) -> None:
    client = Pynector(transport=HTTPTransport(base_url=control.url, engine=engine))
    assert_type(client, Pynector[HTTPRequest, Response])
    async with client:
        response = await client.request({"path": "/echo", "params": {"a": "1"}})
        assert_type(response, Response)
        retried = await client.request_with_retry({"path": "/echo", "method": "POST", "json": {}})
        assert_type(retried, Response)
        with pytest.raises(ConfigurationError, match="parms"):
            await client.request({"path": "/u", "parms": 1})  # type: ignore[typeddict-unknown-key]
    assert response.json()["query"] == {"a": "1"}
    assert retried.json()["method"] == "POST"


async def test_the_transport_on_its_own_is_typed_too(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        request: HTTPRequest = {"path": "/echo", "headers": {"X-A": "b"}}
        response = await transport.request(request)
        assert_type(response, Response)
        async with transport.stream({"path": "/stream", "params": {"chunks": 1}}) as stream:
            body = await stream.aread()
    assert response.json()["headers"]["X-A"] == "b"
    assert len(body) == 1024
