"""Deadlines: AnyIO cancel scopes that raise pynector's ``TimeoutError``."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio

from pynector.errors import ConfigurationError, TimeoutError

__all__ = ["check_timeout", "deadline", "remaining_time"]

# ``anyio.CancelScope(...)`` and ``anyio.current_time()`` each look the running
# backend up first (through sniffio), which on a request path costs as much as
# the scope itself. On asyncio both resolve to the asyncio backend's CancelScope
# class and the loop's clock, so the fast path below calls those directly. That
# class is AnyIO's private API (``anyio._backends._asyncio.CancelScope``): it is
# checked once, on first use, and if AnyIO no longer looks as expected every
# scope is made through the public ``anyio.CancelScope`` instead (slower, still
# correct). ``tests/core/test_concurrency.py`` has a canary for the private API.
_ASYNCIO_BACKEND = "anyio._backends._asyncio"

# asyncio's C ``_get_running_loop`` (``None`` outside a loop, e.g. on trio), read
# from sys.modules so that ``import pynector`` does not import asyncio: a program
# that has not imported asyncio cannot be running on it.
_get_running_loop: Callable[[], Any] | None = None
# The asyncio backend's CancelScope class once checked; ``anyio.CancelScope``
# when the check failed (every scope then goes through the public API).
_asyncio_scope: type[anyio.CancelScope] | None = None


def _no_loop() -> None:
    return None


def _find_get_running_loop() -> Callable[[], Any]:
    """asyncio's ``_get_running_loop`` once asyncio is imported; until then, ``_no_loop``."""
    global _get_running_loop
    asyncio = sys.modules.get("asyncio")
    get = getattr(asyncio, "_get_running_loop", None)
    if get is None:
        return _no_loop
    _get_running_loop = get
    return get  # type: ignore[no-any-return]


def _learn_asyncio_scope(loop: Any) -> type[anyio.CancelScope]:
    """The asyncio backend's CancelScope class, or ``anyio.CancelScope`` if AnyIO changed.

    The assumptions checked: the backend module has a ``CancelScope`` subclass
    of ``anyio.CancelScope``, ``anyio.CancelScope()`` makes one of those on
    asyncio, and AnyIO's clock there is the loop's.
    """
    global _asyncio_scope
    learnt: type[anyio.CancelScope] = anyio.CancelScope
    made = type(anyio.CancelScope())  # also imports the backend module, on first use
    scope_class = getattr(sys.modules.get(_ASYNCIO_BACKEND), "CancelScope", None)
    if (
        isinstance(scope_class, type)
        and issubclass(scope_class, anyio.CancelScope)
        and scope_class is not anyio.CancelScope
        and made is scope_class
        and abs(anyio.current_time() - loop.time()) < 1.0
    ):
        learnt = scope_class
    _asyncio_scope = learnt
    return learnt


def _cancel_scope(timeout: float | None) -> anyio.CancelScope:
    """An AnyIO cancel scope (not yet entered) that expires ``timeout`` seconds from now."""
    loop = (_get_running_loop or _find_get_running_loop())()
    if loop is not None:
        scope_class = _asyncio_scope or _learn_asyncio_scope(loop)
        if scope_class is not anyio.CancelScope:
            return scope_class(deadline=math.inf if timeout is None else loop.time() + timeout)
    # trio, a changed AnyIO, or no event loop (AnyIO raises its usual error).
    at = math.inf if timeout is None else anyio.current_time() + timeout
    return anyio.CancelScope(deadline=at)


def check_timeout(timeout: object, name: str = "timeout") -> float:
    """Validate a per-call timeout without pydantic (it is on the hot path)."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(
            f"{name}={timeout!r} is invalid: it must be a positive, finite number of seconds, "
            f"e.g. {name}=5.0"
        )
    return float(timeout)


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
