"""Deadlines: AnyIO cancel scopes that raise pynector's ``TimeoutError``."""

from __future__ import annotations

import math
from asyncio import _get_running_loop  # noqa: TID251 (a C call, not a primitive)
from types import TracebackType

import anyio

from pynector.errors import TimeoutError

__all__ = ["deadline", "remaining_time"]

# The asyncio backend's CancelScope class, learnt on first use. ``anyio.CancelScope(...)``
# and ``anyio.current_time()`` each look the backend up first (through sniffio),
# which on a request path costs as much as the scope itself; on asyncio the
# class and the loop's clock are all they resolve to.
_asyncio_scope: type[anyio.CancelScope] | None = None


def _cancel_scope(timeout: float | None) -> anyio.CancelScope:
    """An AnyIO cancel scope (not yet entered) that expires ``timeout`` seconds from now."""
    global _asyncio_scope
    loop = _get_running_loop()
    if loop is None:  # trio (or no event loop: AnyIO raises its usual error)
        at = math.inf if timeout is None else anyio.current_time() + timeout
        return anyio.CancelScope(deadline=at)
    scope_class = _asyncio_scope
    if scope_class is None:
        scope_class = _asyncio_scope = type(anyio.CancelScope())
    return scope_class(deadline=math.inf if timeout is None else loop.time() + timeout)


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
        self._scope = scope = _cancel_scope(self._timeout)
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
