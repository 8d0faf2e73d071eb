"""Resolving a request's ``"operation"`` to a method of the SDK client.

An operation is the dotted path of an SDK method below the client:
``"chat.completions.create"`` is ``client.chat.completions.create``. Only
methods of the SDK's API resources qualify, so ``"close"``, ``"with_options"``
or private names are refused. A resolved operation is cached with what the
transport checks on every call: the keyword arguments the method accepts,
whether it is a coroutine function, and whether it takes ``stream``.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pynector.errors import ConfigurationError

__all__ = ["Operation", "resolve_operation"]

_SEGMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Operation:
    """One SDK method, ready to call.

    Attributes:
        name: The dotted operation name (``"embeddings.create"``).
        method: The bound SDK method.
        parameters: The keyword arguments it accepts; ``None`` when it takes ``**kwargs``.
        is_coroutine: ``True`` for ``async def`` methods (``create``).
        takes_stream: Whether it has a ``stream`` parameter (``create``).
        stream_manager: Whether it returns a stream manager to enter
            (``messages.stream``, ``chat.completions.stream``).
    """

    name: str
    method: Callable[..., Any]
    parameters: frozenset[str] | None
    is_coroutine: bool
    takes_stream: bool
    stream_manager: bool


def _unknown(
    provider: str, name: str, why: str, examples: tuple[str, ...], candidates: list[str]
) -> ConfigurationError:
    close = difflib.get_close_matches(name, [*examples, *candidates], n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(repr(e) for e in examples)
    return ConfigurationError(
        f"unknown operation {name!r} for provider {provider!r}: {why}.{hint} An operation is "
        f"the dotted path of an SDK client method, e.g. {listed}; pass it as "
        "{'operation': 'embeddings.create', ...} in the request dict"
    )


def resolve_operation(
    client: Any,
    name: object,
    *,
    provider: str,
    resource_base: type,
    examples: tuple[str, ...],
) -> Operation:
    """Find the SDK method an operation names.

    Args:
        client: The SDK's async client.
        name: The operation (``"chat.completions.create"``).
        provider: The provider's name, for messages.
        resource_base: The SDK's API resource base class: the method must
            belong to one of its instances.
        examples: Operations to suggest in error messages.

    Raises:
        ConfigurationError: If ``name`` is not a string naming such a method.
    """
    if not isinstance(name, str):
        raise ConfigurationError(
            f"'operation' must be a string such as {examples[0]!r}, got "
            f"{type(name).__name__} {name!r:.80}"
        )
    segments = name.split(".")
    if len(segments) < 2 or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise _unknown(provider, name, "it is not a dotted path of public names", examples, [])
    owner: Any = client
    for depth, segment in enumerate(segments[:-1]):
        child = getattr(owner, segment, None)
        if not isinstance(child, resource_base):
            prefix = ".".join(segments[:depth])
            if prefix:
                where = f"{prefix!r} has no API resource {segment!r}"
                options = [f"{prefix}.{n}" for n in _names(owner)]
            else:
                where = f"the client has no API resource {segment!r}"
                options = _names(owner)
            raise _unknown(provider, name, where, examples, options)
        owner = child
    method = getattr(owner, segments[-1], None)
    if not callable(method) or segments[-1].startswith("with_"):
        prefix = ".".join(segments[:-1])
        options = [f"{prefix}.{n}" for n in _methods(owner)]
        raise _unknown(
            provider, name, f"{prefix!r} has no method {segments[-1]!r}", examples, options
        )
    signature = inspect.signature(method)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    parameters = (
        None
        if accepts_any
        else frozenset(
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
    )
    is_coroutine = inspect.iscoroutinefunction(inspect.unwrap(method))
    return Operation(
        name=name,
        method=method,
        parameters=parameters,
        is_coroutine=is_coroutine,
        takes_stream="stream" in signature.parameters,
        # The SDKs' streaming helpers are plain functions returning a *StreamManager.
        stream_manager=not is_coroutine and "StreamManager" in str(signature.return_annotation),
    )


def _names(owner: object) -> list[str]:
    """The sub-resources of ``owner`` (its public properties), for suggestions."""
    return [
        attr
        for attr in dir(type(owner))
        if not attr.startswith(("_", "with_"))
        and isinstance(inspect.getattr_static(type(owner), attr, None), property | cached_property)
    ]


def _methods(owner: object) -> list[str]:
    """The public methods of ``owner``, for suggestions."""
    return [
        attr
        for attr in dir(type(owner))
        if not attr.startswith(("_", "with_"))
        and inspect.isfunction(inspect.getattr_static(type(owner), attr, None))
    ]
