"""``config["token_limit"]``: reserved from the transport's estimate, settled to the usage."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

from pynector import Pynector, Usage
from pynector._config import load_config
from pynector.call import Call
from pynector.concurrency import TokenBudget, TokenBudgetError
from pynector.errors import ConfigurationError, TimeoutError, TransportError
from pynector.transport.protocol import CallTransport

pytestmark = pytest.mark.anyio


class LLM(CallTransport[dict[str, Any], str]):
    """A model: a call costs ``prompt + max_tokens`` up front, replies with ``used`` tokens.

    It records, by its own clock, the tokens each call really used when it arrived.
    """

    transport_type = "llm"

    def __init__(self, *, report_usage: bool = True, estimates: bool = True) -> None:
        self.report_usage = report_usage
        self.estimates = estimates
        self.arrivals: list[tuple[float, int]] = []
        self.fail_first = 0

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    def estimate_tokens(self, call: Call[dict[str, Any]]) -> int | None:
        if not self.estimates:
            return None
        return int(call.data["prompt"] + call.data["max_tokens"])

    async def handle_request(self, call: Call[dict[str, Any]]) -> str:
        data = call.data
        prompt, output = int(data["prompt"]), int(data["used"])
        self.arrivals.append((anyio.current_time(), prompt + output))
        if self.report_usage:
            call.usage = Usage(input_tokens=prompt, output_tokens=output)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise TransportError("overloaded", retryable=True)
        await anyio.lowlevel.checkpoint()
        return "ok"


def most_tokens_in_any_window(arrivals: list[tuple[float, int]], window: float) -> int:
    return max(
        sum(tokens for when, tokens in arrivals if at <= when < at + window) for at, _ in arrivals
    )


def chat(prompt: int = 20, max_tokens: int = 130, used: int = 10) -> dict[str, int]:
    return {"prompt": prompt, "max_tokens": max_tokens, "used": used}


async def test_unused_max_tokens_are_given_back_when_the_reply_reports_its_usage() -> None:
    # Six calls reserve 150 each (900 > 300 per second) but use 30 each (180).
    llm = LLM()
    async with Pynector(transport=llm, config={"token_limit": "300/s"}) as client:
        started = anyio.current_time()
        results = await client.batch_request([(chat(), {}) for _ in range(6)], max_concurrency=6)
        elapsed = anyio.current_time() - started
    assert results == ["ok"] * 6
    assert elapsed < 0.9  # reserved at 150 each they would need three windows (2 s)
    assert most_tokens_in_any_window(llm.arrivals, 1.0) <= 300


async def test_without_a_reported_usage_the_estimate_is_kept() -> None:
    llm = LLM(report_usage=False)
    async with Pynector(transport=llm, config={"token_limit": "300/s"}) as client:
        results = await client.batch_request(
            [(chat(), {}) for _ in range(4)], max_concurrency=4, timeout=0.3
        )
    # Two fit a window of 300 tokens; the other two still wait for the next one (1 s).
    assert results.count("ok") == 2
    assert sum(isinstance(result, TimeoutError) for result in results) == 2
    assert len(llm.arrivals) == 2


async def test_usage_above_the_estimate_is_charged() -> None:
    budget = TokenBudget(100, 0.2)
    reservation = await budget.reserve(10)
    reservation.settle(95)
    assert budget.used == 95
    started = anyio.current_time()
    await budget.reserve(10)
    assert anyio.current_time() - started >= 0.18


async def test_a_waiter_takes_the_room_a_settled_reservation_gives_back_at_once() -> None:
    budget = TokenBudget(100, 60)
    first = await budget.reserve(90)
    started = anyio.current_time()
    async with anyio.create_task_group() as group:
        group.start_soon(budget.reserve, 50)
        await anyio.lowlevel.checkpoint()
        first.settle(20)
    assert anyio.current_time() - started < 1.0  # not the 60 s window
    assert budget.used == 70


async def test_no_window_of_the_period_holds_more_tokens_than_the_budget() -> None:
    llm = LLM()
    # 24 calls use 516 tokens, more than one window of 400 holds (and reserve 70 each).
    calls: list[tuple[Any, dict[str, Any]]] = [
        (chat(prompt=10, max_tokens=60, used=n % 50), {}) for n in range(24)
    ]
    async with Pynector(transport=llm, config={"token_limit": "400/s"}) as client:
        await client.batch_request(calls, max_concurrency=24)
    assert len(llm.arrivals) == 24
    assert sum(tokens for _, tokens in llm.arrivals) == 516
    assert most_tokens_in_any_window(llm.arrivals, 1.0) <= 400


async def test_an_estimate_above_the_whole_budget_fails_at_once_and_sends_nothing() -> None:
    llm = LLM()
    async with Pynector(transport=llm, config={"token_limit": "1000/m"}) as client:
        with pytest.raises(TokenBudgetError) as caught:
            await client.request(chat(prompt=200, max_tokens=900))
    assert isinstance(caught.value, ConfigurationError)
    message = str(caught.value)
    assert "an estimated 1100 tokens" in message
    assert "token budget of 1000 per minute" in message
    assert "Raise token_limit, or shorten the prompt or lower max_tokens" in message
    assert (caught.value.tokens, caught.value.limit) == (1100, 1000)
    assert llm.arrivals == []


async def test_a_call_the_transport_does_not_estimate_is_not_charged() -> None:
    llm = LLM(estimates=False)
    async with Pynector(transport=llm, config={"token_limit": "100/m"}) as client:
        with anyio.fail_after(2):
            for _ in range(5):
                await client.request(chat(prompt=500, max_tokens=500, used=500))
    assert len(llm.arrivals) == 5


async def test_every_attempt_of_a_retry_is_charged() -> None:
    llm = LLM(report_usage=False)
    llm.fail_first = 1
    async with Pynector(transport=llm, config={"token_limit": "300/s"}) as client:
        await client.request_with_retry(chat(), max_retries=1, retry_delay=0)
        assert len(llm.arrivals) == 2
        # 2 x 150 tokens charged: a third call waits for the next window (1 s).
        with anyio.move_on_after(0.3) as waiting:
            await client.request(chat())
    assert waiting.cancelled_caught
    assert len(llm.arrivals) == 2


async def test_the_budget_wait_is_not_part_of_the_attempt_deadline() -> None:
    llm = LLM(report_usage=False)
    config = {"token_limit": "150/s", "timeout": 0.5}
    async with Pynector(transport=llm, config=config) as client:
        await client.request(chat())
        await client.request(chat())  # waits about 1 s for the budget, then sends in time
    assert len(llm.arrivals) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [("90000/m", (90000, 60.0)), (1500, (1500, 1.0)), ("none", None)],
)
def test_token_limit_forms(value: Any, expected: Any) -> None:
    source = {"PYNECTOR_TOKEN_LIMIT": value} if isinstance(value, str) else {}
    config = {} if isinstance(value, str) else {"token_limit": value}
    assert load_config(config, source).token_limit == expected


@pytest.mark.parametrize("bad", ["90000/h", "lots", 0, -1, True])
def test_a_bad_token_limit_is_a_configuration_error(bad: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=r"config\['token_limit'\]=.* is invalid: expected"
    ):
        load_config({"token_limit": bad}, {})


def test_the_env_token_limit_is_named_when_bad() -> None:
    with pytest.raises(ConfigurationError, match="PYNECTOR_TOKEN_LIMIT"):
        load_config({}, {"PYNECTOR_TOKEN_LIMIT": "9/fortnight"})


def test_the_budget_window_keeps_a_margin_for_arrival_jitter() -> None:
    assert TokenBudget(10, 60).window == pytest.approx(60.02)
    assert math.isclose(TokenBudget(10, 1).window, 1.02)


async def test_a_call_cancelled_before_it_is_sent_gives_its_reservation_back() -> None:
    release = anyio.Event()
    entered = anyio.Event()

    class Holding(LLM):
        async def handle_request(self, call: Call[dict[str, Any]]) -> str:
            entered.set()
            await release.wait()
            return await super().handle_request(call)

    llm = Holding(report_usage=False)
    config = {"token_limit": "300/m", "max_connections": 1}
    async with Pynector(transport=llm, config=config) as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.request, chat())  # holds the one slot
            await entered.wait()
            with anyio.move_on_after(0.1):
                await client.request(chat())  # reserves 150, cancelled waiting for the slot
            release.set()
        with anyio.fail_after(5):  # 150 + 150 fit a budget of 300 only if the 150 came back
            await client.request(chat())
    assert len(llm.arrivals) == 2


async def test_a_reservation_in_flight_counts_until_it_can_have_reached_the_server() -> None:
    # The server counts a request when it arrives, some time after the budget let it go:
    # in flight, it is counted as if sent up to `hold` (1 s, at most the period) after its
    # start; settled, from the end of its attempt.
    assert TokenBudget(100, 60).hold == 1.0
    budget = TokenBudget(100, 0.2)
    assert budget.hold == 0.2
    await budget.reserve(100)  # never settled: in flight
    started = anyio.current_time()
    await budget.reserve(10)
    assert anyio.current_time() - started >= 0.38  # hold + window (0.404 s)

    settled = TokenBudget(100, 0.2)
    reservation = await settled.reserve(100)
    reservation.settle(100)  # ended at once
    started = anyio.current_time()
    await settled.reserve(10)
    assert 0.18 <= anyio.current_time() - started < 0.36  # the window from the end only
