"""A plugin whose hook implementation does not match the specification."""

from __future__ import annotations

from typing import Any

from pynector import hookimpl

NOT_A_FACTORY = "a transport entry point must name a callable, not a string"


@hookimpl
def pynector_request(info: Any, colour: str) -> None:
    """Asks for an argument, ``colour``, that the hook specification does not have."""
