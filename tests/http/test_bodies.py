"""Request bodies that can be sent once only, and the method of a request with a body.

A body given as an async iterable (a generator) is read as it is sent: after
one attempt nothing is left of it. Every path that could send a request again
(the client's retries, a followed redirect, aiohttp's reconnect after a stale
keep-alive connection) must then give up with the original error instead of
sending an empty body that the server would accept. Each case is checked from
the server's side: it saw exactly one request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pynector import Call, Pynector
from pynector.errors import (
    ConnectionError,
    HTTPStatusError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from pynector_http import HTTPRequest, HTTPTransport

from ._control import ControlServer
from ._faults import FaultServer

pytestmark = pytest.mark.anyio

_NOT_RESENT = "cannot be sent again: pass the body as bytes"


async def _chunks() -> AsyncIterator[bytes]:
    yield b'{"part": 1,'
    yield b' "part2": 2}'


def _client(url: str, engine: str) -> Pynector:
    return Pynector(transport_type="http", base_url=url, engine=engine)


@pytest.mark.parametrize(
    ("method", "status", "raised"),
    [("PUT", 503, ServerError), ("POST", 429, RateLimitError), ("PUT", 429, RateLimitError)],
)
async def test_a_one_shot_body_is_not_retried_after_a_retryable_status(
    control: ControlServer,
    engine: str,
    key: str,
    method: str,
    status: int,
    raised: type[HTTPStatusError],
) -> None:
    async with _client(control.url, engine) as client:
        with pytest.raises(raised) as caught:
            await client.request_with_retry(
                {
                    "path": "/flaky",
                    "method": method,
                    "params": {"key": key, "status": status, "fail": 1},
                    "content": _chunks(),
                },
                max_retries=3,
                retry_delay=0.0,
            )
    assert control.key(key).attempts == 1  # never a second, empty-bodied request
    assert caught.value.retryable is False
    assert caught.value.status_code == status
    assert _NOT_RESENT in str(caught.value)
    assert "Idempotency-Key" not in str(caught.value)  # that would not help here


async def test_a_bytes_body_is_still_retried_after_503(
    control: ControlServer, engine: str, key: str
) -> None:
    async with _client(control.url, engine) as client:
        response = await client.request_with_retry(
            {
                "path": "/flaky",
                "method": "PUT",
                "params": {"key": key, "status": 503, "fail": 1},
                "content": b"whole",
            },
            retry_delay=0.0,
        )
    assert response.json() == {"attempt": 2}


async def test_a_one_shot_body_is_not_resent_after_the_connection_broke(
    faults: FaultServer, engine: str
) -> None:
    # The server reads the head and hangs up: a PUT (idempotent) that aiohttp would
    # retry on a fresh connection by itself, and the client on a retryable error.
    before = len(faults.requests)
    async with _client(faults.url, engine) as client:
        with pytest.raises(ConnectionError) as caught:
            await client.request_with_retry(
                {"path": "/close-without-response", "method": "PUT", "content": _chunks()},
                retry_delay=0.0,
            )
    assert faults.requests[before:] == ["/close-without-response"]
    assert caught.value.retryable is False
    assert _NOT_RESENT in str(caught.value)


async def test_a_one_shot_body_is_not_retried_after_the_clients_deadline(
    control: ControlServer, engine: str, key: str
) -> None:
    async with _client(control.url, engine) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.request_with_retry(
                {
                    "path": "/slow",
                    "method": "PUT",
                    "params": {"key": key, "seconds": 2},
                    "content": _chunks(),
                },
                timeout=0.3,
                retry_delay=0.0,
            )
    assert caught.value.retryable is False
    assert control.key(key).attempts == 1


async def test_a_307_is_not_followed_with_a_one_shot_body(
    control: ControlServer, engine: str, key: str
) -> None:
    async with HTTPTransport(
        base_url=control.url, engine=engine, follow_redirects=True
    ) as transport:
        with pytest.raises(HTTPStatusError) as caught:
            await transport.request(
                {
                    "path": "/redirect",
                    "method": "POST",
                    "params": {"key": key, "status": 307, "to": f"/echo?key={key}-target"},
                    "content": _chunks(),
                }
            )
    error = caught.value
    assert error.status_code == 307
    assert error.retryable is False
    assert error.response.status_code == 307
    assert "cannot be sent twice" in str(error)
    assert "the server redirected to /echo?key=" in str(error)
    assert control.key(key).attempts == 1
    assert control.key(f"{key}-target").attempts == 0


async def test_a_303_after_a_one_shot_body_is_followed_but_not_retried(
    control: ControlServer, engine: str, key: str
) -> None:
    # 303 turns the request into a GET without a body; a failure after it must not
    # send the whole call (the spent POST first) again.
    async with Pynector(
        transport_type="http", base_url=control.url, engine=engine, follow_redirects=True
    ) as client:
        with pytest.raises(ServerError) as caught:
            await client.request_with_retry(
                {
                    "path": "/redirect",
                    "method": "POST",
                    "params": {
                        "key": key,
                        "status": 303,
                        "to": f"/flaky?key={key}-target&status=503&fail=5",
                    },
                    "content": _chunks(),
                },
                retry_delay=0.0,
            )
    assert caught.value.retryable is False
    assert control.key(key).attempts == 1
    assert control.key(f"{key}-target").attempts == 1


async def test_replayable_is_false_for_a_one_shot_body(engine: str) -> None:
    transport = HTTPTransport(engine=engine)

    def replayable(data: HTTPRequest, **options: Any) -> bool:
        return transport.replayable(Call.standalone(data, options, transport=transport))

    assert replayable({"method": "PUT", "content": _chunks()}) is False
    assert replayable({"method": "PUT", "content": _chunks()}, idempotent=True) is False
    assert replayable({"method": "PUT", "content": b"bytes"}) is True
    assert replayable({"json": {"a": 1}}) is False  # no method: a POST
    assert replayable({"path": "/users"}) is True


# -- a body and no method ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"json": {"a": 1}}, {"data": {"a": "1"}}, {"content": b"raw"}, {"content": "text"}],
    ids=["json", "data", "content-bytes", "content-str"],
)
async def test_a_request_with_a_body_and_no_method_is_a_post(
    control: ControlServer, engine: str, body: HTTPRequest
) -> None:
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        response = await transport.request({"path": "/echo", **body})
    assert response.json()["method"] == "POST"
    assert response.json()["body"] != ""
    assert response.request is not None
    assert response.request.method == "POST"


async def test_a_streamed_body_and_no_method_is_a_post(control: ControlServer, engine: str) -> None:
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        response = await transport.request({"path": "/echo", "content": _chunks()})
    assert response.json()["method"] == "POST"
    assert response.json()["body"] == '{"part": 1, "part2": 2}'


async def test_a_request_without_a_body_or_method_is_a_get(
    control: ControlServer, engine: str
) -> None:
    async with HTTPTransport(base_url=control.url, engine=engine) as transport:
        plain = await transport.request({"path": "/echo"})
        empty = await transport.request({"path": "/echo", "json": None, "data": {}})
    assert plain.json()["method"] == "GET"
    assert empty.json()["method"] == "GET"


async def test_an_engine_cannot_start_a_one_shot_body_over(engine: str) -> None:
    # What an engine that retries by itself (aiohttp before 3.14) would do: it gets
    # an OSError, which the transport reports as the broken connection.
    from pynector_http._body import StreamedBody

    body = StreamedBody(_chunks())
    first = [chunk async for chunk in body]
    assert first == [b'{"part": 1,', b' "part2": 2}']
    with pytest.raises(OSError, match="cannot be sent again"):
        body.__aiter__()
