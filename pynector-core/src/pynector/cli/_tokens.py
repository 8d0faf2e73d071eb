"""``pynector batch --tpm``: the client's token budget, ``config["token_limit"]``.

``--tpm N`` is ``config={"token_limit": "N/m"}``: each attempt reserves the
transport's estimate (:meth:`CallTransport.estimate_tokens
<pynector.transport.protocol.CallTransport.estimate_tokens>`; the sdk transport
counts a chat's text and its output allowance) and the reservation is settled
to the usage the reply reports. A transport that makes no estimate of its own
(``http``, a plugin's) is charged the CLI's estimate instead
(:meth:`~pynector.cli.CLISupport.estimate_tokens`, all the text at four
characters a token), in a budget of the same kind, before each attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynector.concurrency import TokenBudget, TokenBudgetError

if TYPE_CHECKING:
    from pynector import Pynector

__all__ = ["PERIOD", "cli_budget", "over_tpm"]

PERIOD = 60.0
"""``--tpm`` counts tokens per minute."""


def _estimates(transport: Any) -> bool:
    """Whether the transport makes a token estimate of its own for the client's budget."""
    from pynector.transport.protocol import CallTransport

    kind = type(transport)
    own = getattr(kind, "estimate_tokens", None)
    # A full transport derives from CallTransport (checked nominally, as the client does).
    return CallTransport in kind.__mro__ and own is not CallTransport.estimate_tokens


def cli_budget(client: Pynector[Any, Any], tpm: int) -> TokenBudget | None:
    """The budget the CLI charges itself, for a transport that does not estimate; else ``None``."""
    return None if _estimates(client.transport) else TokenBudget(tpm, PERIOD)


def over_tpm(tokens: int, tpm: int) -> TokenBudgetError:
    """The error of a request whose estimate alone exceeds ``--tpm``, worded for the CLI."""
    return TokenBudgetError(
        f"this request needs an estimated {tokens} tokens, more than --tpm {tpm} allows "
        "in a minute; raise --tpm or shorten it",
        tokens=tokens,
        limit=tpm,
        period=PERIOD,
    )
