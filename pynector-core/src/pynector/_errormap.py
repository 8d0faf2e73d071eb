"""The error map at the client's boundary with a transport.

A transport translates its own library's exceptions into :mod:`pynector.errors`
(``raise Ours(...) from exc``). A minimal third-party transport may instead let
builtin exceptions escape; the client maps those here, in one place, around
every call it makes into a transport (connecting, a request, opening a stream,
reading a stream item):

* an error of pynector's own passes unchanged (pynector's ``TimeoutError`` is
  also a builtin ``OSError``, so this is checked first);
* the builtin ``TimeoutError`` becomes pynector's (retryable, like the timeout
  of one attempt);
* any other ``OSError`` (``ConnectionError``, ``ConnectionResetError``, ...)
  becomes a retryable :class:`pynector.errors.ConnectionError`;
* anything else (a ``KeyError``, a cancellation) propagates unchanged.

The original exception is kept as ``__cause__``.
"""

from __future__ import annotations

import builtins
from types import TracebackType

from . import errors

__all__ = ["map_builtin_errors", "translate_builtin"]


def translate_builtin(exc: OSError) -> errors.PynectorError:
    """The pynector error for a builtin ``OSError`` a transport raised."""
    if isinstance(exc, builtins.TimeoutError):
        return errors.TimeoutError(f"the transport timed out: {exc}")
    return errors.ConnectionError(f"the transport failed: {type(exc).__name__}: {exc}")


class map_builtin_errors:
    """Translate the builtin errors raised in the block (see the module docstring).

    A class rather than a ``@contextmanager`` generator: it runs around every
    request, and entering it costs two plain calls, no generator.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, OSError) and not isinstance(exc, errors.PynectorError):
            raise translate_builtin(exc) from exc
