"""The ``--tpm`` budget: the token estimate and the sliding window of ``TokenBudget``."""

from __future__ import annotations

import anyio
import pytest

from pynector.cli import CLISupport
from pynector.concurrency import TokenBudget, TokenBudgetError
from pynector_sdk._cli import estimate_tokens


def test_the_estimate_is_text_over_four_plus_the_output_allowance() -> None:
    chat = {
        "model": "a-very-long-model-name-that-is-not-text",
        "messages": [{"role": "user", "content": "x" * 41}],
        "max_tokens": 100,
    }
    assert estimate_tokens(chat) == 11 + 100
    assert estimate_tokens({**chat, "n": 3}) == 11 + 300
    assert estimate_tokens({"input": ["abcd", "efgh"], "operation": "embeddings.create"}) == 2
    assert estimate_tokens({"input": "abcd", "max_output_tokens": 7}) == 8
    assert estimate_tokens({"prompt": "", "max_tokens": True}) == 0
    assert estimate_tokens("a plain string of 32 characters.") == 8


def test_the_default_estimate_of_any_transport_is_all_its_text_over_four() -> None:
    estimate = CLISupport().estimate_tokens
    assert estimate({"model": "abcd", "messages": [{"content": "x" * 41}], "max_tokens": 9}) == 12
    assert estimate(["abcd", 5, None]) == 1


@pytest.mark.anyio
async def test_no_window_of_the_period_holds_more_than_the_limit() -> None:
    budget = TokenBudget(100, period=0.2)
    starts: list[tuple[float, int]] = []

    async def take(tokens: int) -> None:
        await budget.reserve(tokens)
        starts.append((anyio.current_time(), tokens))

    async with anyio.create_task_group() as group:
        for tokens in (60, 30, 50, 40, 70):
            group.start_soon(take, tokens)

    assert len(starts) == 5
    first = starts[0][0]
    assert starts[-1][0] - first >= 0.4  # 250 tokens at 100 per 0.2 s need three windows
    for at, _ in starts:
        # (0.19: the times here are read just after the budget's own, a hair later)
        in_window = sum(tokens for when, tokens in starts if at <= when < at + 0.19)
        assert in_window <= 100


@pytest.mark.anyio
async def test_tokens_that_fit_are_taken_at_once() -> None:
    budget = TokenBudget(100, period=60)
    start = anyio.current_time()

    for _ in range(10):
        await budget.reserve(10)

    assert anyio.current_time() - start < 0.5


@pytest.mark.anyio
async def test_a_request_larger_than_the_whole_budget_is_refused() -> None:
    with pytest.raises(
        TokenBudgetError,
        match="estimated 101 tokens, more than the whole token budget of 100 per minute",
    ):
        await TokenBudget(100).reserve(101)
