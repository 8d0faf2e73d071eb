"""The call contract: a full transport receives each attempt's Call and reports on it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, ClassVar

import anyio
import pytest

import pynector
from pynector import Call, ConfigurationError, Pynector, TimeoutError, TransportError, Usage
from pynector.registry import register_transport, unregister_transport
from pynector.transport.protocol import CallTransport

pytestmark = pytest.mark.anyio


class Echo(CallTransport[dict[str, Any], dict[str, Any]]):
    """A full transport that answers with what it received and reports on the call."""

    transport_type = "echo-call"

    def __init__(self) -> None:
        self.calls: list[Call[dict[str, Any]]] = []
        self.deadlines: list[float] = []
        self.connected = 0

    async def connect(self) -> None:
        self.connected += 1

    async def disconnect(self) -> None:
        self.connected -= 1

    async def handle_request(self, call: Call[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(call)
        self.deadlines.append(anyio.current_effective_deadline())
        call.status = 200
        call.url = "echo://server/" + str(call.data.get("path", ""))
        call.usage = Usage(input_tokens=3, output_tokens=4)
        call.span_name = "echo"
        call.attributes["echo.path"] = call.data.get("path")
        if call.data.get("fail"):
            call.status = 503
            raise TransportError("unavailable", retryable=True)
        return {"data": call.data, "options": dict(call.options)}

    @asynccontextmanager
    async def _open(self, call: Call[dict[str, Any]]) -> AsyncIterator[AsyncIterator[int]]:
        self.calls.append(call)

        async def items() -> AsyncIterator[int]:
            for item in range(3):
                yield item

        yield items()

    def handle_stream(
        self, call: Call[dict[str, Any]]
    ) -> Any:  # an async context manager of an async iterator
        return self._open(call)


class Seen:
    """A plugin that keeps every call it wrapped, as it was when the attempt ended."""

    def __init__(self) -> None:
        self.ended: list[tuple[Call[Any], int | None, Usage | None]] = []
        self.headers = {"x-seen": "1"}

    @pynector.hookimpl
    def pynector_request(self, info: Call[Any]) -> Any:
        @contextmanager
        def around() -> Iterator[None]:
            try:
                yield
            finally:
                self.ended.append((info, info.status, info.usage))

        return around()

    @pynector.hookimpl
    def pynector_headers(self, headers: dict[str, str]) -> None:
        headers.update(self.headers)


async def test_a_full_transport_gets_the_call_and_plugins_read_what_it_reported() -> None:
    transport = Echo()
    seen = Seen()
    async with Pynector(transport=transport, plugins=[seen], config={"timeout": 7}) as client:
        reply = await client.request({"path": "a"}, flag=True)
    assert reply == {"data": {"path": "a"}, "options": {"flag": True}}
    [call] = transport.calls
    assert call.attempt == 1
    assert call.batch_index is None
    assert call.timeout == 7
    assert call.deadline is not None
    assert call.transport is transport
    assert call.transport_type == "echo-call"
    assert [(c, status, usage) for c, status, usage in seen.ended] == [
        (call, 200, Usage(input_tokens=3, output_tokens=4))
    ]
    assert call.result == reply
    assert call.url == "echo://server/a"
    assert call.attributes == {"echo.path": "a"}
    assert call.usage is not None
    assert call.usage.total_tokens == 7
    assert "path" not in repr(call)
    assert "echo-call" in repr(call)


async def test_a_call_no_plugin_sees_is_marked_unobserved() -> None:
    transport = Echo()
    async with Pynector(transport=transport, enable_telemetry=False) as client:
        await client.request({"path": "alone"})
    async with Pynector(transport=transport, plugins=[Seen()]) as client:
        await client.request({"path": "seen"})
    assert [(call.data["path"], call.observed) for call in transport.calls] == [
        ("alone", False),
        ("seen", True),
    ]
    assert Call.standalone({}).observed  # a transport used alone reports everything


async def test_retries_and_batches_number_their_calls() -> None:
    transport = Echo()
    async with Pynector(transport=transport, config={"retry_delay": 0}) as client:
        with pytest.raises(TransportError):
            await client.request_with_retry({"fail": True}, max_retries=2)
        results = await client.batch_request([({"path": str(i)}, {}) for i in range(3)])
    assert [c.attempt for c in transport.calls[:3]] == [1, 2, 3]
    assert sorted(c.batch_index for c in transport.calls[3:] if c.batch_index is not None) == [
        0,
        1,
        2,
    ]
    assert [r["data"]["path"] for r in results if isinstance(r, dict)] == ["0", "1", "2"]


async def test_a_stream_gets_a_streaming_call_and_plugins_see_the_stream() -> None:
    transport = Echo()
    seen = Seen()
    async with (
        Pynector(transport=transport, plugins=[seen]) as client,
        client.stream({"path": "s"}) as items,
    ):
        assert [item async for item in items] == [0, 1, 2]
    [call] = transport.calls
    assert call.streaming is True
    assert seen.ended[0][0] is call
    assert call.result is not None


async def test_the_client_sets_its_deadline_unless_the_transport_handles_it() -> None:
    class OwnDeadline(Echo):
        @property
        def handles_deadline(self) -> bool:
            return True

    scoped, own = Echo(), OwnDeadline()
    for transport in (scoped, own):
        async with Pynector(transport=transport, config={"timeout": 30}) as client:
            await client.request({})
    assert scoped.deadlines[0] < math.inf
    assert own.deadlines[0] == math.inf  # no cancel scope of the client's own
    assert own.calls[0].deadline is not None
    assert own.calls[0].remaining() is not None


class Hangs(Echo):
    """Never answers; says whether its calls may be sent again."""

    def __init__(self, replayable: bool) -> None:
        super().__init__()
        self._replayable = replayable

    async def handle_request(self, call: Call[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(call)
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    def replayable(self, call: Call[dict[str, Any]]) -> bool:
        return self._replayable


@pytest.mark.parametrize(("replayable", "attempts"), [(False, 1), (True, 3)])
async def test_a_call_cut_short_is_resent_only_if_the_transport_says_it_is_replayable(
    replayable: bool, attempts: int
) -> None:
    transport = Hangs(replayable)
    async with Pynector(transport=transport, config={"retry_delay": 0}) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.request_with_retry({}, max_retries=2, timeout=0.05)
    assert caught.value.retryable is replayable
    assert len(transport.calls) == attempts


async def test_a_full_transport_replays_nothing_by_default() -> None:
    class Silent(Hangs):
        replayable = CallTransport.replayable  # the protocol's default

    transport = Silent(True)
    async with Pynector(transport=transport) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.request_with_retry({}, max_retries=2, timeout=0.05)
    assert caught.value.retryable is False
    assert len(transport.calls) == 1


async def test_a_transport_without_handle_stream_refuses_to_stream() -> None:
    class NoStream(CallTransport[Any, Any]):
        async def connect(self) -> None: ...

        async def disconnect(self) -> None: ...

        async def handle_request(self, call: Call[Any]) -> Any:
            return call.data

    async with Pynector(transport=NoStream()) as client:
        assert await client.request("x") == "x"
        with pytest.raises(ConfigurationError, match="cannot stream"):
            async with client.stream("x"):
                pass


# -- per-client plugins -------------------------------------------------------


async def test_plugins_of_one_client_never_see_another_clients_calls() -> None:
    first, second = Seen(), Seen()
    async with (
        Pynector(transport=Echo(), plugins=[first]) as one,
        Pynector(transport=Echo(), plugins=[second]) as two,
        Pynector(transport=Echo()) as none,
    ):
        await one.request({"path": "1"})
        await two.request({"path": "2"})
        await two.request({"path": "2"})
        await none.request({"path": "0"})
    assert [c.data for c, _, _ in first.ended] == [{"path": "1"}]
    assert [c.data for c, _, _ in second.ended] == [{"path": "2"}] * 2
    assert one.plugins == (first,)
    assert none.plugins == ()


async def test_a_clients_plugins_run_after_the_installed_ones() -> None:
    order: list[str] = []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        @pynector.hookimpl
        def pynector_request(self, info: Call[Any]) -> None:
            order.append(self.name)

    installed = Named("installed")
    name = pynector.registry.register_plugin(installed, name="test-call-order")
    try:
        async with Pynector(transport=Echo(), plugins=[Named("own")]) as client:
            await client.request({})
    finally:
        pynector.registry.unregister_plugin(name)
    assert order == ["installed", "own"]


async def test_trace_headers_come_from_the_clients_plugins_and_stop_with_telemetry_off() -> None:
    class Headers(Echo):
        async def handle_request(self, call: Call[dict[str, Any]]) -> dict[str, Any]:
            return call.trace_headers()

    class Tracing(Seen):
        pynector_telemetry = True  # left out of calls with enable_telemetry=False

        def __init__(self) -> None:
            super().__init__()
            self.headers = {"traceparent": "00-1"}

    plugins = [Seen(), Tracing()]
    async with Pynector(transport=Headers(), plugins=plugins) as client:
        assert await client.request({}) == {"x-seen": "1", "traceparent": "00-1"}
    async with Pynector(transport=Headers(), plugins=plugins, enable_telemetry=False) as client:
        assert await client.request({}) == {"x-seen": "1"}
    assert Call.standalone({}).trace_headers() == {}


@pytest.mark.parametrize("plugins", ["seen", 3, [Seen]])
def test_a_bad_plugins_argument_is_a_configuration_error(plugins: Any) -> None:
    with pytest.raises(ConfigurationError, match="plugin"):
        Pynector(transport=Echo(), plugins=plugins)


def test_a_plugin_with_an_unknown_hook_is_refused_with_the_closest_name() -> None:
    class Typo:
        @pynector.hookimpl
        def pynector_requests(self, info: Any) -> None: ...

    with pytest.raises(ConfigurationError, match="did you mean 'pynector_request'"):
        Pynector(transport=Echo(), plugins=[Typo()])


# -- options= and attempt_timeout= ---------------------------------------------


async def test_options_carry_transport_options_a_keyword_cannot() -> None:
    transport = Echo()
    async with Pynector(transport=transport) as client:
        reply = await client.request({}, timeout=5, options={"timeout": 1, "options": 2}, x=3)
        assert reply["options"] == {"timeout": 1, "options": 2, "x": 3}
        assert transport.calls[-1].timeout == 5  # the client's own timeout, apart
        replies = await client.batch_request([({}, {"own": 1})], options={"timeout": 9})
        assert replies[0] == {"data": {}, "options": {"timeout": 9, "own": 1}}
        with pytest.raises(ConfigurationError, match=r"both in options= and as keywords"):
            await client.request({}, options={"x": 1}, x=2)
        with pytest.raises(ConfigurationError, match="must be a mapping"):
            await client.request({}, options=[("x", 1)])  # type: ignore[arg-type]


async def test_attempt_timeout_sets_the_deadline_of_each_attempt_in_a_batch() -> None:
    transport = Echo()
    async with Pynector(transport=transport, config={"timeout": 60}) as client:
        await client.batch_request([({}, {})] * 2, timeout=30, attempt_timeout=2)
        async with client.batch([({}, {})], attempt_timeout=3) as results:
            assert [r.ok async for r in results] == [True]
        with pytest.raises(ConfigurationError, match="attempt_timeout=0"):
            await client.batch_request([({}, {})], attempt_timeout=0)
    assert [c.timeout for c in transport.calls] == [2, 2, 3]


# -- what the factory declares -------------------------------------------------


async def test_a_factory_gets_the_client_settings_it_declares_and_no_others() -> None:
    class Declares(Echo):
        client_settings: ClassVar[frozenset[str]] = frozenset({"max_connections"})

        def __init__(self, **options: Any) -> None:
            super().__init__()
            self.options = options

    class Silent(Declares):
        client_settings: ClassVar[frozenset[str]] = frozenset()

    register_transport("declares", Declares)
    register_transport("silent", Silent)
    try:
        declares = Pynector(transport_type="declares", config={"max_connections": 7})
        silent = Pynector(transport_type="silent", config={"max_connections": 7})
        own = Pynector(transport_type="declares", max_connections=3)
    finally:
        unregister_transport("declares")
        unregister_transport("silent")
    assert declares.transport.options == {"max_connections": 7}
    assert silent.transport.options == {}
    assert own.transport.options == {"max_connections": 3}
    async with declares as client:
        assert client.transport.calls == []
        await client.request({})
        assert client.transport.calls[0].transport_type == "declares"
