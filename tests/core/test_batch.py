"""batch_request: order, bounded concurrency, errors, deadlines and lazy input."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import sniffio

from pynector import Pynector
from pynector.errors import ConfigurationError, ServerError, TimeoutError, TransportError
from pynector.hookspecs import hookimpl
from pynector.testing import MockTransport

pytestmark = pytest.mark.anyio


class InFlight:
    """A handler that tracks how many calls are in flight at once."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.current = 0
        self.peak = 0

    async def __call__(self, data: Any, **options: Any) -> Any:
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            await anyio.sleep(self.delay * random.random())
        finally:
            self.current -= 1
        return data


async def test_results_come_back_in_input_order() -> None:
    async with Pynector(transport=MockTransport(InFlight())) as client:
        results = await client.batch_request([(n, {}) for n in range(50)], max_concurrency=7)
    assert results == list(range(50))


@pytest.mark.parametrize("cap", [1, 3, 10])
async def test_never_more_than_max_concurrency_in_flight(cap: int) -> None:
    handler = InFlight(delay=0.02)
    async with Pynector(transport=MockTransport(handler)) as client:
        await client.batch_request([(n, {}) for n in range(40)], max_concurrency=cap)
    assert handler.peak == cap


async def test_default_concurrency_is_config_max_connections() -> None:
    handler = InFlight(delay=0.02)
    config = {"max_connections": 4}
    async with Pynector(transport=MockTransport(handler), config=config) as client:
        await client.batch_request([(n, {}) for n in range(30)])
    assert handler.peak == 4


async def test_max_connections_caps_requests_in_flight_across_calls() -> None:
    handler = InFlight(delay=0.02)
    config = {"max_connections": 3}
    async with Pynector(transport=MockTransport(handler), config=config) as client:
        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(client.request, n)
    assert handler.peak == 3


async def test_errors_stay_in_their_slots_without_raise_on_error() -> None:
    def handler(data: int, **options: Any) -> int:
        if data % 3 == 0:
            raise ServerError(f"failed {data}", status_code=500)
        return data

    async with Pynector(transport=MockTransport(handler)) as client:
        results = await client.batch_request([(n, {}) for n in range(7)], max_concurrency=2)
    for n, result in enumerate(results):
        if n % 3 == 0:
            assert isinstance(result, ServerError)
            assert str(result) == f"failed {n}"
        else:
            assert result == n


async def test_raise_on_error_raises_the_first_error_itself_and_cancels_the_rest() -> None:
    cancelled = 0
    waiting = 0
    others_waiting = anyio.Event()

    async def handler(data: int, **options: Any) -> int:
        nonlocal cancelled, waiting
        if data == 2:
            await others_waiting.wait()
            raise TransportError("request 2 failed", retryable=False)
        waiting += 1
        if waiting == 2:
            others_waiting.set()
        try:
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise
        return data

    async with Pynector(transport=MockTransport(handler)) as client:
        with anyio.fail_after(5), pytest.raises(TransportError, match="request 2 failed") as caught:
            await client.batch_request([(n, {}) for n in range(10)], 5, None, True)
    assert type(caught.value) is TransportError
    assert waiting >= 2
    assert cancelled == waiting


async def test_batch_timeout_keeps_finished_results_and_fills_the_rest_with_timeout() -> None:
    async def handler(data: int, **options: Any) -> int:
        if data >= 3:
            await anyio.Event().wait()
        return data

    async with Pynector(transport=MockTransport(handler)) as client:
        start = anyio.current_time()
        results = await client.batch_request(
            [(n, {}) for n in range(8)], max_concurrency=4, timeout=0.3
        )
    assert anyio.current_time() - start < 5
    assert results[:3] == [0, 1, 2]
    assert len(results) == 8
    assert all(isinstance(result, TimeoutError) for result in results[3:])


async def test_batch_timeout_with_raise_on_error_raises_timeout() -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: anyio.Event().wait())) as client:
        with pytest.raises(TimeoutError, match="batch timed out"):
            await client.batch_request([(1, {}), (2, {})], timeout=0.1, raise_on_error=True)


async def test_any_iterable_is_pulled_lazily_as_workers_free_up() -> None:
    pulled = 0
    seen_at_first_call: list[int] = []

    def requests() -> Iterator[tuple[int, dict[str, Any]]]:
        nonlocal pulled
        for n in range(1000):
            pulled += 1
            yield n, {}

    async def handler(data: int, **options: Any) -> int:
        if not seen_at_first_call:
            seen_at_first_call.append(pulled)
        await anyio.lowlevel.checkpoint()
        return data

    async with Pynector(transport=MockTransport(handler, record=False)) as client:
        results = await client.batch_request(requests(), max_concurrency=5)
    assert results == list(range(1000))
    assert seen_at_first_call[0] <= 5


async def test_an_iterator_cut_by_the_batch_timeout_keeps_its_unpulled_requests() -> None:
    async def handler(data: int, **options: Any) -> int:
        if data == 1:
            await anyio.Event().wait()
        return data

    source: Iterator[tuple[int, dict[str, Any]]] = iter([(n, {}) for n in range(10)])
    async with Pynector(transport=MockTransport(handler)) as client:
        results = await client.batch_request(source, max_concurrency=1, timeout=0.2)
    assert results[0] == 0
    assert isinstance(results[1], TimeoutError)
    assert len(results) == 2
    assert next(source) == (2, {})


async def test_request_options_override_batch_options() -> None:
    mock = MockTransport(lambda data, **options: options)
    async with Pynector(transport=mock) as client:
        results = await client.batch_request(
            [("a", {}), ("b", {"mode": "own"})], mode="shared", extra=1
        )
    assert results == [{"mode": "shared", "extra": 1}, {"mode": "own", "extra": 1}]


async def test_batch_retries_each_request_when_asked() -> None:
    attempts: dict[int, int] = {}

    def handler(data: int, **options: Any) -> int:
        attempts[data] = attempts.get(data, 0) + 1
        if attempts[data] < 3:
            raise ServerError("busy", status_code=503)
        return data

    config = {"retry_delay": 0}
    async with Pynector(transport=MockTransport(handler), config=config) as client:
        results = await client.batch_request([(n, {}) for n in range(5)], max_retries=2)
    assert results == list(range(5))
    assert attempts == dict.fromkeys(range(5), 3)


async def test_empty_batch_returns_an_empty_list() -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: d)) as client:
        assert await client.batch_request([]) == []


class StartTimes:
    """A plugin that notes when each request starts: right after the client admits it."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    @hookimpl
    def pynector_request(self, info: Any) -> None:
        self.starts.append(anyio.current_time())


async def test_rate_limit_holds_in_every_window_across_the_batch() -> None:
    observer = StartTimes()
    config = {"rate_limit": "20/s"}
    transport = MockTransport(lambda d, **o: d)
    async with Pynector(transport=transport, config=config, plugins=[observer]) as client:
        results = await client.batch_request([(n, {}) for n in range(22)], max_concurrency=22)
    assert results == list(range(22))
    starts = observer.starts
    assert len(starts) == 22
    # Any 21 consecutive starts span at least one second.
    windows = zip(starts, starts[20:], strict=False)
    assert all(later - earlier >= 1.0 - 1e-6 for earlier, later in windows)


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        (5, "iterable of"),
        ("/users", "iterable of"),
        ({"path": "/users"}, "iterable of"),
        ([{"path": "/users"}], "request 0 is dict"),
        ([("a", {}), ("b",)], "request 1 is tuple"),
        ([("a", "not-options")], r"\(data, options\) tuple"),
    ],
)
async def test_malformed_request_lists_are_rejected_before_anything_is_sent(
    requests: Any, message: str
) -> None:
    mock = MockTransport(lambda d, **o: d)
    async with Pynector(transport=mock) as client:
        with pytest.raises(ConfigurationError, match=message):
            await client.batch_request(requests)
    assert mock.call_count == 0


async def test_malformed_item_in_a_generator_raises_when_reached() -> None:
    def requests() -> Iterator[Any]:
        yield ("a", {})
        yield "not a tuple"

    async with Pynector(transport=MockTransport(lambda d, **o: d)) as client:
        with pytest.raises(ConfigurationError, match="request 1 is str"):
            await client.batch_request(requests(), max_concurrency=1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
async def test_bad_max_concurrency_is_a_configuration_error(bad: Any) -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: d)) as client:
        with pytest.raises(ConfigurationError, match="max_concurrency"):
            await client.batch_request([("a", {})], max_concurrency=bad)


async def test_none_data_in_a_batch_is_reported_in_its_slot() -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: d)) as client:
        results = await client.batch_request([("a", {}), (None, {})])
    assert results[0] == "a"
    assert isinstance(results[1], ConfigurationError)


async def test_batch_retry_delay_sets_the_first_backoff() -> None:
    attempts: dict[int, int] = {}

    def handler(data: int, **options: Any) -> int:
        attempts[data] = attempts.get(data, 0) + 1
        if attempts[data] == 1:
            raise ServerError("busy", status_code=503)
        return data

    # With the configured retry_delay (up to 1000 s) this would not finish in time.
    config = {"retry_delay": 1000.0}
    async with Pynector(transport=MockTransport(handler), config=config) as client:
        with anyio.fail_after(10):
            results = await client.batch_request(
                [(n, {}) for n in range(3)], max_retries=1, retry_delay=0
            )
    assert results == [0, 1, 2]


async def test_batch_timeout_reaches_requests_cancelled_inside_a_transports_task_group() -> None:
    # A transport that runs its exchange in a task group of its own: on trio the
    # batch deadline's Cancelled leaves it inside an exception group. The slot must
    # still hold the batch's TimeoutError, never stay empty.
    started = anyio.Event()

    async def handler(data: Any, **options: Any) -> Any:
        if data == "fast":
            return "ok"
        if sniffio.current_async_library() == "trio":
            import trio

            # trio's own nurseries (as in trio.open_tcp_stream) wrap the Cancelled.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                nursery.start_soon(trio.sleep_forever)
                started.set()
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep_forever)
            started.set()
        return "never"  # pragma: no cover

    requests: list[tuple[str, dict[str, Any]]] = [
        ("fast", {}),
        ("held", {}),
        ("held", {}),
        ("fast", {}),
    ]
    async with Pynector(transport=MockTransport(handler)) as client:
        results = await client.batch_request(requests, max_concurrency=4, timeout=0.5)
    assert started.is_set()
    assert results[0] == "ok"
    assert results[3] == "ok"
    assert isinstance(results[1], TimeoutError)
    assert isinstance(results[2], TimeoutError)
