"""Deadlines: AnyIO cancel scopes that raise pynector's ``TimeoutError``."""

from __future__ import annotations

import math
from types import TracebackType

import anyio

from pynector.errors import TimeoutError

__all__ = ["deadline", "remaining_time"]


class deadline:
    """Cancel the enclosed block after ``timeout`` seconds and raise ``TimeoutError``.

    Like :func:`anyio.fail_after`, but the error is :class:`pynector.errors.TimeoutError`
    (also a builtin ``TimeoutError``) with a message that names the operation and
    the setting that controls it. ``timeout=None`` sets no deadline of its own;
    any enclosing deadline still applies.

    Args:
        timeout: Seconds, or ``None`` for no deadline of its own.
        what: What is being timed, for the message (``"request"``, ``"batch"``).
    """

    __slots__ = ("_scope", "_timeout", "_what", "expired")

    def __init__(self, timeout: float | None, what: str = "operation") -> None:
        self._timeout = timeout
        self._what = what
        self._scope: anyio.CancelScope | None = None
        self.expired = False
        """Whether this deadline fired (rather than an error from inside the block)."""

    def __enter__(self) -> None:
        at = math.inf if self._timeout is None else anyio.current_time() + self._timeout
        self._scope = scope = anyio.CancelScope(deadline=at)
        scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope = self._scope
        assert scope is not None
        # Only the deadline can cancel this scope (it is not handed out), so a
        # caught cancellation always means the deadline expired.
        scope.__exit__(exc_type, exc, tb)
        if scope.cancelled_caught:
            self.expired = True
            raise TimeoutError(
                f"{self._what} timed out after {self._timeout:g} s; pass a larger "
                f"timeout=... or set config={{'timeout': ...}}",
                timeout=self._timeout,
            )


def remaining_time() -> float:
    """Seconds left before the caller's effective deadline (``inf`` when none)."""
    return anyio.current_effective_deadline() - anyio.current_time()
