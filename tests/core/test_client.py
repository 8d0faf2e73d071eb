"""The client's request, stream and lifecycle semantics, on asyncio and trio."""

from __future__ import annotations

import builtins
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import pynector
from pynector import Pynector
from pynector.errors import (
    ClientClosedError,
    ConfigurationError,
    ConnectionError,
    PynectorError,
    TimeoutError,
    TransportError,
)
from pynector.testing import MockTransport

pytestmark = pytest.mark.anyio


async def hang_forever(data: Any, **options: Any) -> Any:
    await anyio.Event().wait()


async def test_request_returns_the_transports_reply_from_sync_and_async_handlers() -> None:
    async def async_handler(data: Any, **options: Any) -> Any:
        await anyio.lowlevel.checkpoint()
        return {"async": data, **options}

    async with Pynector(transport=MockTransport(lambda data, **o: {"sync": data})) as client:
        assert await client.request({"q": 1}) == {"sync": {"q": 1}}
    async with Pynector(transport=MockTransport(async_handler)) as client:
        assert await client.request("x", flag=True) == {"async": "x", "flag": True}


async def test_request_passes_options_to_the_transport_and_records_the_call() -> None:
    mock = MockTransport(lambda data, **options: "ok")
    async with Pynector(transport=mock) as client:
        await client.request({"path": "/a"}, extra=1)
    assert [(call.data, call.options) for call in mock.calls] == [({"path": "/a"}, {"extra": 1})]


async def test_timeout_argument_raises_pynector_timeout_that_is_also_builtin() -> None:
    async with Pynector(transport=MockTransport(hang_forever)) as client:
        start = anyio.current_time()
        with pytest.raises(TimeoutError) as caught:
            await client.request({"path": "/slow"}, timeout=0.2)
    elapsed = anyio.current_time() - start
    assert isinstance(caught.value, builtins.TimeoutError)
    assert isinstance(caught.value, PynectorError)
    assert caught.value.timeout == 0.2
    assert "timeout" in str(caught.value)
    assert 0.2 <= elapsed < 5


async def test_seed_style_bare_except_timeout_error_catches_it() -> None:
    caught = False
    async with Pynector(transport=MockTransport(hang_forever)) as client:
        try:
            await client.request({"path": "/users", "method": "GET"}, timeout=0.1)
        except builtins.TimeoutError:
            caught = True
    assert caught


async def test_timeout_precedence_argument_over_config_over_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYNECTOR_TIMEOUT", "0.1")
    async with Pynector(transport=MockTransport(hang_forever)) as client:
        with pytest.raises(TimeoutError) as from_env:
            await client.request("x")
    assert from_env.value.timeout == 0.1
    async with Pynector(transport=MockTransport(hang_forever), config={"timeout": 0.15}) as client:
        with pytest.raises(TimeoutError) as from_config:
            await client.request("x")
        assert from_config.value.timeout == 0.15
        with pytest.raises(TimeoutError) as from_argument:
            await client.request("x", timeout=0.05)
        assert from_argument.value.timeout == 0.05


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "5", True])
async def test_bad_timeouts_are_configuration_errors(bad: object) -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: "ok")) as client:
        with pytest.raises(ConfigurationError, match="timeout"):
            await client.request("x", timeout=bad)  # type: ignore[arg-type]


async def test_none_data_is_a_configuration_error_that_shows_a_correct_call() -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: "ok")) as client:
        with pytest.raises(ConfigurationError, match=r"client\.request\(\{"):
            await client.request(None)


async def test_context_manager_connects_on_enter_and_closes_on_exit_even_after_error() -> None:
    mock = MockTransport(lambda d, **o: "ok")
    with pytest.raises(RuntimeError, match="boom"):
        async with Pynector(transport=mock):
            assert mock.connect_count == 1
            raise RuntimeError("boom")
    assert mock.disconnect_count == 1


async def test_transport_is_connected_on_first_use_once_and_disconnected_by_aclose() -> None:
    mock = MockTransport(lambda d, **o: "ok")
    client = Pynector(transport=mock)
    assert mock.connect_count == 0
    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(client.request, "x")
    assert mock.connect_count == 1
    await client.aclose()
    await client.aclose()
    assert mock.disconnect_count == 1


async def test_closed_client_raises_a_clear_error() -> None:
    client = Pynector(transport=MockTransport(lambda d, **o: "ok"))
    await client.aclose()
    with pytest.raises(ClientClosedError, match="create a new client"):
        await client.request("x")
    with pytest.raises(ClientClosedError):
        await client.batch_request([("x", {})])
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    assert "closed" in repr(client)


def test_transport_options_next_to_a_transport_instance_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        Pynector(transport=MockTransport(lambda d, **o: "ok"), base_url="http://x")  # type: ignore[call-overload]


def test_an_object_that_is_not_a_transport_is_rejected_by_name() -> None:
    with pytest.raises(ConfigurationError, match=r"object is not a transport: it has no connect"):
        Pynector(transport=object())  # type: ignore[call-overload]


async def test_stream_yields_items_as_they_come() -> None:
    async def chunks(data: Any, **options: Any) -> AsyncIterator[bytes]:
        for part in (b"a", b"b", b"c"):
            yield part

    async with Pynector(transport=MockTransport(chunks)) as client:
        async with client.stream({"path": "/s"}) as items:
            received = [item async for item in items]
    assert received == [b"a", b"b", b"c"]


async def test_stream_left_early_closes_the_source() -> None:
    closed = anyio.Event()

    async def endless(data: Any, **options: Any) -> AsyncIterator[int]:
        number = 0
        try:
            while True:
                yield number
                number += 1
        finally:
            closed.set()

    async with Pynector(transport=MockTransport(endless)) as client:
        async with client.stream("x") as items:
            async for item in items:
                if item == 3:
                    break
        with anyio.fail_after(5):
            await closed.wait()


async def test_stream_deadline_covers_the_whole_stream() -> None:
    async def stalls(data: Any, **options: Any) -> AsyncIterator[bytes]:
        yield b"first"
        await anyio.Event().wait()
        yield b"never"

    async with Pynector(transport=MockTransport(stalls)) as client:
        received = []
        with pytest.raises(TimeoutError, match="stream timed out"):
            async with client.stream("x", timeout=0.2) as items:
                async for item in items:
                    received.append(item)  # noqa: PERF401 (kept up to the timeout)
    assert received == [b"first"]


class BuiltinErrorTransport:
    """A minimal transport that raises builtin exceptions, as third parties do."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def send(self, data: Any, **options: Any) -> None:
        raise self.error

    async def receive(self) -> AsyncIterator[Any]:
        yield b""


@pytest.mark.parametrize(
    "error", [builtins.ConnectionResetError("reset by peer"), OSError("network is unreachable")]
)
async def test_builtin_connection_errors_become_retryable_transport_errors(
    error: OSError,
) -> None:
    async with Pynector(transport=BuiltinErrorTransport(error)) as client:
        with pytest.raises(ConnectionError) as caught:
            await client.request("x")
    assert isinstance(caught.value, TransportError)
    assert caught.value.retryable is True
    assert caught.value.__cause__ is error


async def test_builtin_timeout_from_a_transport_becomes_pynectors_timeout() -> None:
    error = builtins.TimeoutError("took too long")
    async with Pynector(transport=BuiltinErrorTransport(error)) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.request("x")
    assert caught.value.__cause__ is error
    assert caught.value.retryable is True


async def test_other_exceptions_from_a_transport_propagate_unchanged() -> None:
    error = KeyError("mine")
    async with Pynector(transport=BuiltinErrorTransport(error)) as client:
        with pytest.raises(KeyError) as caught:
            await client.request("x")
    assert caught.value is error


class FailingAtTransport:
    """A transport of the 0.2 form (request and stream) that raises ``error`` at one step.

    Its ``send`` and ``receive`` complete the declared form
    (:class:`~pynector.transport.protocol.StreamingTransport`); the client never calls them.
    """

    def __init__(self, step: str, error: BaseException) -> None:
        self.step = step
        self.error = error
        self.calls = 0

    def _maybe_fail(self, step: str) -> None:
        if step == self.step:
            raise self.error

    async def connect(self) -> None:
        self._maybe_fail("connect")

    async def disconnect(self) -> None:
        pass

    async def request(self, data: Any, **options: Any) -> Any:
        self.calls += 1
        self._maybe_fail("request")
        return data

    @asynccontextmanager
    async def stream(self, data: Any, **options: Any) -> AsyncIterator[AsyncIterator[Any]]:
        self._maybe_fail("open stream")

        async def items() -> AsyncIterator[Any]:
            yield data
            self._maybe_fail("read stream")

        yield items()

    async def send(self, data: Any, **options: Any) -> None:
        raise AssertionError("the client sends through request()")

    def receive(self) -> AsyncIterator[Any]:
        raise AssertionError("the client reads through request() and stream()")


async def _use(client: Pynector, step: str) -> None:
    if step in ("connect", "request"):
        await client.request("x")
        return
    async with client.stream("x") as items:
        async for _ in items:
            pass


STEPS = ["connect", "request", "open stream", "read stream"]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize(
    "error", [builtins.ConnectionResetError("reset by peer"), OSError("network is unreachable")]
)
async def test_builtin_os_errors_at_every_call_into_a_transport_become_connection_errors(
    step: str, error: OSError
) -> None:
    client = Pynector(transport=FailingAtTransport(step, error))  # connects on first use
    try:
        with pytest.raises(ConnectionError, match="the transport failed") as caught:
            await _use(client, step)
    finally:
        await client.aclose()
    assert caught.value.retryable is True
    assert caught.value.__cause__ is error


@pytest.mark.parametrize("step", STEPS)
async def test_a_builtin_timeout_at_every_call_into_a_transport_becomes_pynectors(
    step: str,
) -> None:
    error = builtins.TimeoutError("took too long")
    client = Pynector(transport=FailingAtTransport(step, error))
    try:
        with pytest.raises(TimeoutError, match="the transport timed out") as caught:
            await _use(client, step)
    finally:
        await client.aclose()
    assert isinstance(caught.value, PynectorError)
    assert caught.value.retryable is True
    assert caught.value.__cause__ is error


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("ours already", retryable=False),
        TimeoutError("ours, also a builtin OSError"),
        KeyError("not an OSError"),
    ],
)
async def test_pynector_and_other_errors_at_every_call_into_a_transport_pass_unchanged(
    step: str, error: Exception
) -> None:
    client = Pynector(transport=FailingAtTransport(step, error))
    try:
        with pytest.raises(type(error)) as caught:
            await _use(client, step)
    finally:
        await client.aclose()
    assert caught.value is error
    assert caught.value.__cause__ is None


async def test_a_mapped_builtin_connection_error_is_retried() -> None:
    class FlakyTransport(FailingAtTransport):
        async def request(self, data: Any, **options: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise builtins.ConnectionResetError("reset by peer")
            return data

    transport = FlakyTransport("none", OSError())
    async with Pynector(transport=transport, config={"retry_delay": 0}) as client:
        assert await client.request_with_retry("x", max_retries=1) == "x"
    assert transport.calls == 2


def test_public_names_of_pynector() -> None:
    assert pynector.__all__ == sorted(pynector.__all__)
    assert set(pynector.__all__) == {
        "BatchResult",
        "Call",
        "ConfigurationError",
        "Pynector",
        "PynectorError",
        "ResponseTooLargeError",
        "TimeoutError",
        "TransportError",
        "Usage",
        "__version__",
        "configure_telemetry",
        "hookimpl",
    }
    assert pynector.hookimpl.project_name == "pynector"


async def test_a_request_inside_a_stream_block_in_the_same_task_works() -> None:
    async with Pynector(
        transport=MockTransport(lambda data, **o: [data]), config={"max_connections": 2}
    ) as client:
        async with client.stream("outer") as items:
            assert await client.request("inner") == ["inner"]
            assert [item async for item in items] == ["outer"]


class OwnErrorTransport(BuiltinErrorTransport):
    """A transport that already raises pynector's errors."""


@pytest.mark.parametrize(
    "error",
    [TimeoutError("the server took too long"), ConnectionError("refused", retryable=False)],
)
async def test_pynector_errors_from_a_transport_are_raised_unchanged(error: Exception) -> None:
    async with Pynector(transport=OwnErrorTransport(error)) as client:
        with pytest.raises(type(error)) as caught:
            await client.request("x")
    assert caught.value is error
