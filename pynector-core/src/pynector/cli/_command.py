"""The types every subcommand module is written against."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

__all__ = ["Handler", "Subcommands"]

if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
    """What ``add_parser(subcommands)`` adds its subparser to."""

Handler: TypeAlias = Callable[[argparse.Namespace], int]
"""What a subcommand runs: takes the parsed arguments, returns the exit code."""
