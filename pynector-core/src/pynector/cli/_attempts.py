"""Counting each request's attempts, and holding them to a ``--tpm`` budget, through hooks.

The commands run every request in a task that sets :data:`TALLY`; the plugin
from :func:`attempts_plugin` counts that request's retries (and, with a budget,
makes each attempt wait for its tokens) through the client's hooks.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynector.hookspecs import RequestInfo, RetryWaitInfo

    from ._tokens import TokenBudget

__all__ = ["TALLY", "Tally", "attempts_plugin"]


class Tally:
    """What the hooks learn about the request the current task is sending."""

    __slots__ = ("attempts", "tokens")

    def __init__(self, tokens: int) -> None:
        self.attempts = 1
        self.tokens = tokens


TALLY: ContextVar[Tally | None] = ContextVar("pynector_batch_tally", default=None)


def attempts_plugin(budget: TokenBudget | None) -> object:
    """A private plugin: counts retries, and holds attempts to the token budget."""
    from pynector.hookspecs import hookimpl

    class Attempts:
        @hookimpl
        def pynector_retry_wait(self, info: RetryWaitInfo) -> None:
            tally = TALLY.get()
            if tally is not None:
                tally.attempts += 1

    if budget is None:
        return Attempts()

    class AttemptsAndTokens(Attempts):
        @hookimpl
        def pynector_request(self, info: RequestInfo) -> Any:
            tally = TALLY.get()
            if tally is None or budget is None:
                return None
            return budget.reserve(tally.tokens)

    return AttemptsAndTokens()
