"""The client's types: a typed transport gives a typed client; by name it is ``Any``.

``make lint`` type-checks this file with strict mypy, whose ``warn_unused_ignores``
turns each ``# type: ignore[code]`` below into a proof: the line must have that
error, or mypy fails. ``typing.assert_type`` proves what mypy infers. pytest runs
the same code, so each test also sends real requests and checks what came back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, assert_type

import anyio.lowlevel
import pytest

from pynector import BatchResult, Call, Pynector
from pynector.errors import ConfigurationError
from pynector.transport.protocol import CallTransport
from tests.reliability._servers import EchoServer

pytestmark = pytest.mark.anyio


class Lookup(TypedDict):
    """The request of the typed transport below."""

    path: str
    fields: NotRequired[list[str]]


@dataclass(frozen=True)
class Found:
    """Its reply."""

    path: str
    fields: tuple[str, ...]
    attempt: int


class LookupTransport(CallTransport[Lookup, Found]):
    """A full transport typed over its request and reply; it checks keys at run time too."""

    transport_type = "lookup"

    def __init__(self) -> None:
        self.connected = False

    async def connect(self) -> None:
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    async def handle_request(self, call: Call[Lookup]) -> Found:
        await anyio.lowlevel.checkpoint()
        unknown = sorted(set(call.data) - set(Lookup.__annotations__))
        if unknown:
            raise ConfigurationError(f"unknown request keys {unknown}; use 'path' and 'fields'")
        call.status = 200
        return Found(call.data["path"], tuple(call.data.get("fields", ())), call.attempt)


async def test_a_client_of_a_typed_transport_is_typed_over_its_request_and_reply() -> None:
    client = Pynector(transport=LookupTransport())
    assert_type(client, Pynector[Lookup, Found])
    async with client as entered:
        assert_type(entered, Pynector[Lookup, Found])
        reply = await client.request({"path": "/users/1", "fields": ["name"]})
        assert_type(reply, Found)
        assert reply == Found("/users/1", ("name",), 1)
        retried = await client.request_with_retry({"path": "/users/2"}, max_retries=1)
        assert_type(retried, Found)
        assert retried.path == "/users/2"


async def test_a_misspelt_request_key_fails_the_type_check_and_the_transport() -> None:
    async with Pynector(transport=LookupTransport()) as client:
        with pytest.raises(ConfigurationError, match=r"unknown request keys \['feilds'\]"):
            await client.request({"path": "/users/1", "feilds": ["name"]})  # type: ignore[typeddict-unknown-key]
        with pytest.raises(ConfigurationError, match="request data is None"):
            await client.request(None)  # type: ignore[arg-type]


async def test_an_attribute_the_reply_does_not_have_fails_the_type_check() -> None:
    async with Pynector(transport=LookupTransport()) as client:
        reply = await client.request({"path": "/users/1"})
    with pytest.raises(AttributeError, match="no_such_attribute"):
        reply.no_such_attribute()  # type: ignore[attr-defined]
    assert reply.fields == ()


async def test_a_client_created_by_name_is_untyped() -> None:
    with EchoServer() as echo:
        async with Pynector(transport_type="http", base_url=echo.url) as client:
            assert_type(client, Pynector[Any, Any])
            reply = await client.request({"path": "/any/keys", "params": {"a": "1"}})
            assert_type(reply, Any)
            # Not a type error here (no ignore needed): the transport catches it.
            with pytest.raises(ConfigurationError, match="'parms' -> 'params'"):
                await client.request({"path": "/any/keys", "parms": {"a": "1"}})
    assert reply.status_code == 200
    assert reply.json()["target"] == "/any/keys?a=1"


async def test_batch_request_returns_the_replies_or_the_exceptions() -> None:
    async with Pynector(transport=LookupTransport()) as client:
        requests: list[tuple[Lookup, dict[str, Any]]] = [
            ({"path": f"/users/{n}"}, {}) for n in range(3)
        ]
        requests.append(({"path": "/x", "bad": 1}, {}))  # type: ignore[typeddict-unknown-key]
        results = await client.batch_request(requests)
    assert_type(results, list[Found | Exception])
    assert [result.path for result in results if isinstance(result, Found)] == [
        "/users/0",
        "/users/1",
        "/users/2",
    ]
    assert isinstance(results[3], ConfigurationError)


async def test_a_streamed_batch_yields_typed_results() -> None:
    requests: list[tuple[Lookup, dict[str, Any]]] = [({"path": f"/u/{n}"}, {}) for n in range(4)]
    seen: list[str] = []
    async with Pynector(transport=LookupTransport()) as client, client.batch(requests) as results:
        assert_type(results, AsyncIterator[BatchResult[Found]])
        async for result in results:
            assert_type(result, BatchResult[Found])
            assert_type(result.value, Found | None)
            assert result.value is not None
            seen.append(result.value.path)
    assert sorted(seen) == [f"/u/{n}" for n in range(4)]


async def _fetch_path(client: Pynector, path: str) -> Any:
    """A helper annotated with the bare ``Pynector``: any client is accepted."""
    assert_type(client, Pynector[Any, Any])
    return await client.request({"path": path})


async def test_a_bare_pynector_annotation_accepts_any_client() -> None:
    async with Pynector(transport=LookupTransport()) as client:
        assert await _fetch_path(client, "/typed") == Found("/typed", (), 1)
    with EchoServer() as echo:
        async with Pynector(transport_type="http", base_url=echo.url) as untyped:
            reply = await _fetch_path(untyped, "/untyped")
    assert reply.json()["target"] == "/untyped"


async def test_batch_request_raising_on_error_returns_only_replies() -> None:
    async with Pynector(transport=LookupTransport()) as client:
        results = await client.batch_request([({"path": "/a"}, {})], raise_on_error=True)
        assert_type(results, list[Found])
        positional = await client.batch_request([({"path": "/b"}, {})], None, None, True)
        assert_type(positional, list[Found])
        either = await client.batch_request([({"path": "/c"}, {})], raise_on_error=bool(results))
        assert_type(either, list[Found | Exception])
    assert [results[0].path, positional[0].path] == ["/a", "/b"]


async def test_a_transport_of_the_0_2_form_is_accepted_untyped() -> None:
    class RequestOnly:
        async def connect(self) -> None:
            pass

        async def disconnect(self) -> None:
            pass

        async def request(self, data: Any, **options: Any) -> Any:
            return data

    async with Pynector(transport=RequestOnly()) as client:
        assert_type(client, Pynector[Any, Any])
        assert await client.request("x") == "x"
