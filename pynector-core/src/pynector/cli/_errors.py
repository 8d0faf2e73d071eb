"""The command line's own errors: a bad command line, a bad input line."""

from __future__ import annotations

__all__ = ["LineError", "UsageError"]


class UsageError(Exception):
    """A bad command line or an unusable input or output: exit status 2, nothing sent."""


class LineError(ValueError):
    """An input line of ``pynector batch`` that cannot be sent; the message says why."""
