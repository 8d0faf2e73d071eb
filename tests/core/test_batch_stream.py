"""client.batch: results as they finish, bounded, lazy, cancellable; on_result; before_attempt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from pynector import BatchResult, Pynector
from pynector.errors import ConfigurationError, ServerError, TimeoutError, TransportError
from pynector.hookspecs import hookimpl
from pynector.testing import MockTransport

pytestmark = pytest.mark.anyio


class Gate:
    """A handler that holds requests until ``cap`` are in flight (or the last has started)."""

    def __init__(self, cap: int, total: int) -> None:
        self.cap = cap
        self.total = total
        self.started = 0
        self.current = 0
        self.peak = 0
        self.release = anyio.Event()

    async def __call__(self, data: Any, **options: Any) -> Any:
        self.started += 1
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            if self.current == self.cap or self.started == self.total:
                self.release.set()
                self.release = anyio.Event()
            else:
                await self.release.wait()
        finally:
            self.current -= 1
        return data


class Blocking:
    """A handler: requests in ``slow`` wait forever; it counts those that were cancelled."""

    def __init__(self, slow: set[int]) -> None:
        self.slow = slow
        self.current = 0
        self.cancelled = 0
        self.all_waiting = anyio.Event()

    async def __call__(self, data: int, **options: Any) -> int:
        self.current += 1
        try:
            if data in self.slow:
                if self.current == len(self.slow):
                    self.all_waiting.set()
                try:
                    await anyio.Event().wait()
                except anyio.get_cancelled_exc_class():
                    self.cancelled += 1
                    raise
            return data
        finally:
            self.current -= 1


async def test_results_stream_as_they_finish_a_slow_request_does_not_hold_back_a_fast_one() -> None:
    first_may_finish = anyio.Event()

    async def handler(data: int, **options: Any) -> int:
        if data == 0:
            await first_may_finish.wait()
        return data

    order: list[int] = []
    async with Pynector(transport=MockTransport(handler)) as client:
        with anyio.fail_after(5):
            async with client.batch([(0, {}), (1, {}), (2, {})], max_concurrency=3) as results:
                async for result in results:
                    order.append(result.index)
                    if len(order) == 2:
                        first_may_finish.set()
    assert sorted(order[:2]) == [1, 2]
    assert order[2] == 0


async def test_each_result_carries_its_index_data_options_attempts_and_elapsed() -> None:
    calls: dict[int, int] = {}

    def handler(data: dict[str, int], **options: Any) -> int:
        number = data["n"]
        calls[number] = calls.get(number, 0) + 1
        if number == 2 and calls[number] < 3:
            raise ServerError("busy", status_code=503)
        if number == 3:
            raise ServerError("down", status_code=500)
        return number * 10

    requests = [({"n": n}, {"tag": n} if n % 2 else {}) for n in range(5)]
    async with Pynector(transport=MockTransport(handler), config={"retry_delay": 0}) as client:
        async with client.batch(requests, max_retries=2, max_concurrency=2) as results:
            seen = {result.index: result async for result in results}
    assert sorted(seen) == [0, 1, 2, 3, 4]
    for n, result in seen.items():
        assert isinstance(result, BatchResult)
        assert result.data == {"n": n}
        assert result.options == ({"tag": n} if n % 2 else {})
        assert 0 <= result.elapsed < 5
    assert [seen[n].value for n in (0, 1, 2, 4)] == [0, 10, 20, 40]
    assert all(seen[n].ok and seen[n].error is None for n in (0, 1, 2, 4))
    assert [seen[n].attempts for n in range(5)] == [1, 1, 3, 3, 1]
    assert not seen[3].ok
    assert isinstance(seen[3].error, ServerError)
    assert seen[3].value is None


@pytest.mark.parametrize("cap", [1, 3, 4])
async def test_never_more_than_max_concurrency_in_flight(cap: int) -> None:
    handler = Gate(cap, total=12)
    async with Pynector(transport=MockTransport(handler)) as client:
        with anyio.fail_after(5):
            async with client.batch([(n, {}) for n in range(12)], max_concurrency=cap) as results:
                values = sorted([result.index async for result in results if result.ok])
    assert values == list(range(12))
    assert handler.peak == cap


async def test_a_generator_is_pulled_lazily_and_a_slow_loop_body_holds_the_workers_back() -> None:
    pulled = 0

    def requests() -> Iterator[tuple[int, dict[str, Any]]]:
        nonlocal pulled
        for n in range(10_000):
            pulled += 1
            yield n, {}

    async with Pynector(transport=MockTransport(lambda d, **o: d, record=False)) as client:
        async with client.batch(requests(), max_concurrency=4) as results:
            async for _ in results:
                # Every worker is now waiting for room in the buffer (4 results).
                await anyio.wait_all_tasks_blocked()
                assert pulled <= 4 + 4 + 1
                break
    assert pulled < 20


async def test_break_cancels_the_requests_in_flight_and_leaves_nothing_running() -> None:
    handler = Blocking(slow={1, 2, 3})
    async with Pynector(transport=MockTransport(handler)) as client:
        with anyio.fail_after(5):
            async with client.batch([(n, {}) for n in range(4)], max_concurrency=4) as results:
                async for result in results:
                    assert result.value == 0
                    await handler.all_waiting.wait()
                    break
        assert handler.cancelled == 3
        assert handler.current == 0
        # The client is still usable after the early exit.
        assert await client.request(7) == 7


async def test_an_error_in_the_loop_body_propagates_as_itself_after_cleanup() -> None:
    handler = Blocking(slow={1, 2})
    async with Pynector(transport=MockTransport(handler)) as client:
        with anyio.fail_after(5), pytest.raises(KeyError) as caught:
            async with client.batch([(n, {}) for n in range(3)], max_concurrency=3) as results:
                async for _ in results:
                    await handler.all_waiting.wait()
                    raise KeyError("stop")
    assert type(caught.value) is KeyError
    assert handler.cancelled == 2
    assert handler.current == 0


async def test_outer_cancellation_reaches_the_requests_in_flight() -> None:
    handler = Blocking(slow={0, 1, 2})
    seen: list[int] = []
    async with Pynector(transport=MockTransport(handler)) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:

                async def consume(scope: anyio.CancelScope) -> None:
                    with scope:
                        async with client.batch([(n, {}) for n in range(5)]) as results:
                            async for (
                                result
                            ) in results:  # each result is kept before the error ends the loop
                                seen.append(result.index)  # noqa: PERF401

                scope = anyio.CancelScope()
                group.start_soon(consume, scope)
                await handler.all_waiting.wait()
                scope.cancel()
    assert scope.cancelled_caught
    assert sorted(seen) in ([], [3], [4], [3, 4])
    assert handler.cancelled == 3
    assert handler.current == 0


async def test_batch_timeout_yields_timeout_errors_for_the_unfinished_and_keeps_the_rest() -> None:
    handler = Blocking(slow={2, 3})
    async with Pynector(transport=MockTransport(handler)) as client:
        start = anyio.current_time()
        async with client.batch([(n, {}) for n in range(6)], max_concurrency=2, timeout=0.3) as rs:
            seen = {result.index: result async for result in rs}
    assert anyio.current_time() - start < 5
    assert sorted(seen) == list(range(6))
    assert [seen[n].value for n in (0, 1)] == [0, 1]
    for n in (2, 3, 4, 5):
        assert isinstance(seen[n].error, TimeoutError)
        assert "batch timed out" in str(seen[n].error)
    # 2 and 3 were in flight (one attempt); 4 and 5 were never started.
    assert seen[2].attempts == seen[3].attempts == 1
    assert seen[4].attempts == seen[5].attempts == 0
    assert seen[4].data == 4
    assert seen[2].elapsed >= 0.2
    assert handler.cancelled == 2


async def test_batch_timeout_with_an_iterator_leaves_the_unpulled_requests_in_it() -> None:
    handler = Blocking(slow={1})
    source: Iterator[tuple[int, dict[str, Any]]] = iter([(n, {}) for n in range(10)])
    async with Pynector(transport=MockTransport(handler)) as client:
        async with client.batch(source, max_concurrency=1, timeout=0.2) as results:
            seen = [result async for result in results]
    assert [result.index for result in seen] == [0, 1]
    assert isinstance(seen[1].error, TimeoutError)
    assert next(source) == (2, {})


async def test_raise_on_error_raises_the_first_error_itself_after_the_results_before_it() -> None:
    handler_blocking = Blocking(slow={2, 3})

    async def handler(data: int, **options: Any) -> int:
        if data == 4:
            await handler_blocking.all_waiting.wait()
            raise TransportError("request 4 failed", retryable=False)
        return await handler_blocking(data)

    seen: list[int] = []
    async with Pynector(transport=MockTransport(handler)) as client:
        with anyio.fail_after(5), pytest.raises(TransportError, match="request 4") as caught:
            async with client.batch(
                [(n, {}) for n in range(5)], max_concurrency=5, raise_on_error=True
            ) as results:
                async for result in results:  # each result is kept before the error ends the loop
                    seen.append(result.index)  # noqa: PERF401
    assert type(caught.value) is TransportError
    assert sorted(seen) == [0, 1]
    assert handler_blocking.cancelled == 2
    assert handler_blocking.current == 0


async def test_raise_on_error_with_a_batch_timeout_raises_timeout_error() -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: anyio.Event().wait())) as client:
        with pytest.raises(TimeoutError, match="batch timed out"):
            async with client.batch([(1, {}), (2, {})], timeout=0.1, raise_on_error=True) as rs:
                async for _ in rs:
                    pass


async def test_a_malformed_item_in_a_generator_raises_from_the_loop_when_reached() -> None:
    def requests() -> Iterator[Any]:
        yield ("a", {})
        yield "not a tuple"

    seen: list[Any] = []
    async with Pynector(transport=MockTransport(lambda d, **o: d)) as client:
        with pytest.raises(ConfigurationError, match="request 1 is str"):
            async with client.batch(requests(), max_concurrency=1) as results:
                async for result in results:  # each result is kept before the error ends the loop
                    seen.append(result.value)  # noqa: PERF401
    assert seen == ["a"]


async def test_malformed_lists_and_bad_arguments_are_rejected_when_batch_is_called() -> None:
    mock = MockTransport(lambda d, **o: d)
    async with Pynector(transport=mock) as client:
        with pytest.raises(ConfigurationError, match="request 1 is tuple"):
            client.batch([("a", {}), ("b",)])  # type: ignore[list-item]
        with pytest.raises(ConfigurationError, match="max_concurrency"):
            client.batch([("a", {})], max_concurrency=0)
        with pytest.raises(ConfigurationError, match="iterable of"):
            client.batch({"path": "/users"})  # type: ignore[dict-item]
        with pytest.raises(ConfigurationError, match="before_attempt"):
            client.batch([("a", {})], before_attempt=5)  # type: ignore[arg-type]
    assert mock.call_count == 0


async def test_iterating_outside_the_block_or_entering_twice_is_a_clear_error() -> None:
    async with Pynector(transport=MockTransport(lambda d, **o: d)) as client:
        stream: Any = client.batch([("a", {})])
        with pytest.raises(ConfigurationError, match=r"async with client\.batch"):
            async for _ in stream:
                pass
        async with stream as results:
            assert [result.value async for result in results] == ["a"]
        with pytest.raises(ConfigurationError, match="already entered"):
            async with stream:
                pass


async def test_options_reach_the_transport_and_a_request_s_own_win() -> None:
    mock = MockTransport(lambda data, **options: options)
    async with Pynector(transport=mock) as client:
        async with client.batch([("a", {}), ("b", {"mode": "own"})], mode="shared") as results:
            values = {result.index: result.value async for result in results}
    assert values == {0: {"mode": "shared"}, 1: {"mode": "own"}}


async def test_before_attempt_runs_before_every_attempt_and_its_error_is_the_result() -> None:
    calls: list[tuple[int, Any, int]] = []
    failures: dict[Any, int] = {}

    async def before_attempt(index: int, data: Any, attempt: int) -> None:
        calls.append((index, data, attempt))
        if data == "too big":
            raise ConfigurationError("over the token budget")

    def handler(data: Any, **options: Any) -> Any:
        failures[data] = failures.get(data, 0) + 1
        if data == "flaky" and failures[data] == 1:
            raise ServerError("busy", status_code=503)
        return data

    async with Pynector(transport=MockTransport(handler), config={"retry_delay": 0}) as client:
        async with client.batch(
            [("ok", {}), ("flaky", {}), ("too big", {})],
            max_concurrency=1,
            max_retries=1,
            before_attempt=before_attempt,
        ) as results:
            seen = [result async for result in results]
    assert calls == [(0, "ok", 1), (1, "flaky", 1), (1, "flaky", 2), (2, "too big", 1)]
    assert [result.value for result in seen[:2]] == ["ok", "flaky"]
    assert seen[1].attempts == 2
    assert isinstance(seen[2].error, ConfigurationError)
    assert "too big" not in failures  # refused before it was sent


async def test_batch_request_on_result_reports_each_request_as_it_finishes() -> None:
    first_may_finish = anyio.Event()
    reported: list[BatchResult[Any]] = []

    async def handler(data: int, **options: Any) -> int:
        if data == 0:
            await first_may_finish.wait()
        if data == 2:
            raise ServerError("failed", status_code=500)
        return data

    def on_result(result: BatchResult[Any]) -> None:
        reported.append(result)
        if len(reported) == 2:
            first_may_finish.set()

    async with Pynector(transport=MockTransport(handler)) as client:
        with anyio.fail_after(5):
            results = await client.batch_request(
                [(n, {}) for n in range(3)], max_concurrency=3, on_result=on_result
            )
    assert results[:2] == [0, 1]
    assert isinstance(results[2], ServerError)
    assert reported[-1].index == 0
    assert sorted(result.index for result in reported) == [0, 1, 2]
    assert [result.ok for result in sorted(reported, key=lambda r: r.index)] == [True, True, False]


async def test_batch_request_raises_what_on_result_raises() -> None:
    def on_result(result: BatchResult[Any]) -> None:
        raise RuntimeError("the progress bar broke")

    async with Pynector(transport=MockTransport(lambda d, **o: d)) as client:
        with pytest.raises(RuntimeError, match="progress bar"):
            await client.batch_request([(1, {}), (2, {})], on_result=on_result)
        with pytest.raises(ConfigurationError, match="on_result"):
            await client.batch_request([(1, {})], on_result=3)  # type: ignore[call-overload]


def test_a_batch_result_is_read_only_and_its_repr_shows_no_data() -> None:
    result: BatchResult[str] = BatchResult(
        3, {"headers": {"Authorization": "Bearer sk-secret"}}, {}, "reply", None, 2, 0.25
    )
    assert repr(result) == "<BatchResult index=3 ok attempts=2 elapsed=0.250s>"
    assert result.ok
    failed: BatchResult[str] = BatchResult(4, "x", {}, None, ValueError("sk-secret"), 1, 0.0)
    assert "sk-secret" not in repr(failed)
    assert "error=ValueError" in repr(failed)
    with pytest.raises(AttributeError, match="read-only"):
        result.index = 5


class BatchObserver:
    """A plugin that records each batch's info and the batch index of each attempt."""

    def __init__(self) -> None:
        self.batches: list[Any] = []
        self.indexes: list[int | None] = []

    @hookimpl
    def pynector_batch(self, info: Any) -> None:
        self.batches.append(info)

    @hookimpl
    def pynector_request(self, info: Any) -> None:
        self.indexes.append(info.batch_index)


async def test_plugins_see_a_streamed_batch_its_stats_and_each_request_s_index() -> None:
    observer = BatchObserver()

    def handler(data: int, **options: Any) -> int:
        if data == 1:
            raise ServerError("failed", status_code=500)
        return data

    async with Pynector(transport=MockTransport(handler), plugins=[observer]) as client:
        async with client.batch([(n, {}) for n in range(3)], max_concurrency=2) as results:
            assert len([result async for result in results]) == 3
    [info] = observer.batches
    assert (info.size, info.max_concurrency) == (3, 2)
    assert info.stats == {"total": 3, "succeeded": 2, "failed": 1}
    assert sorted(index for index in observer.indexes if index is not None) == [0, 1, 2]


def test_import_pynector_loads_the_batch_module_only_when_it_is_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pynector\n"
        "print('pynector._batch' in sys.modules)\n"
        "pynector.BatchResult\n"
        "print('pynector._batch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


async def test_batch_pulls_an_async_iterable_as_workers_free_up() -> None:
    gate = Gate(cap=3, total=12)
    arrived = anyio.Event()
    pulled: list[int] = []

    async def source() -> Any:
        for index in range(12):
            if index == 6:
                await arrived.wait()  # items that arrive later, as claims from a queue do
            pulled.append(index)
            yield index, {}

    async with Pynector(transport=MockTransport(gate)) as client:
        async with client.batch(source(), max_concurrency=3) as results:
            seen: list[BatchResult[Any]] = []
            async for result in results:
                seen.append(result)
                # Three results have been emitted by the time a worker asks for the
                # seventh item (three workers pulled six): the later items arrive then.
                # Waiting for more could hold them back while two requests wait at the
                # gate for a third, which the worker waiting for the seventh would send.
                if len(seen) == 3:
                    arrived.set()
    # Every item once, numbered in the order it was pulled.
    assert {result.value: result.index for result in seen} == {n: n for n in range(12)}
    assert gate.peak <= 3
    assert pulled == list(range(12))
