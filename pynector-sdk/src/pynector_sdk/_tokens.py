"""The token estimate of an SDK call, before it is sent: its text / 4 plus its output allowance.

No tokenizer and no network: a request's cost is guessed from the request
itself, so a token budget (``pynector batch --tpm``,
:meth:`SDKTransport.estimate_tokens <pynector_sdk.SDKTransport.estimate_tokens>`)
can reserve it up front and correct it to the reply's reported usage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["estimate_tokens"]

_CHARS_PER_TOKEN = 4
# Strings that name things rather than carry text the model reads.
_NOT_TEXT = frozenset({"model", "operation", "role"})
_OUTPUT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_MAX_DEPTH = 64


def _characters(value: Any, depth: int = 0) -> int:
    if isinstance(value, str):
        return len(value)
    if depth > _MAX_DEPTH:
        return 0
    if isinstance(value, Mapping):
        return sum(
            _characters(item, depth + 1) for key, item in value.items() if key not in _NOT_TEXT
        )
    if isinstance(value, list | tuple):
        return sum(_characters(item, depth + 1) for item in value)
    return 0


def _output_allowance(data: Mapping[str, Any]) -> int:
    for key in _OUTPUT_KEYS:
        limit = data.get(key)
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            choices = data.get("n")
            return limit * (choices if isinstance(choices, int) and choices > 1 else 1)
    return 0


def estimate_tokens(data: Any) -> int:
    """Estimate the tokens a request uses: its text / 4 plus its output allowance.

    *Text* is every string in the request except the values of ``model``,
    ``operation`` and ``role``; the *output allowance* is ``max_tokens``,
    ``max_completion_tokens`` or ``max_output_tokens`` (0 when it has none),
    times ``n`` when it asks for several choices.

    Args:
        data: The SDK call's keyword arguments (a request dict).

    Returns:
        The estimate, ``0`` for a request without text or allowance.
    """
    tokens = math.ceil(_characters(data) / _CHARS_PER_TOKEN)
    if isinstance(data, Mapping):
        tokens += _output_allowance(data)
    return tokens
