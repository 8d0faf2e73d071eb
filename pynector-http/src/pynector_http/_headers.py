"""Engine-neutral, read-only HTTP headers that never show a secret in their repr."""

from __future__ import annotations

from collections.abc import (
    Callable,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
)
from typing import Any, overload

from pynector.redact import REDACTED, is_secret_header

__all__ = ["Headers"]


class _Names(KeysView[str]):
    """``headers.keys()``: a set of names whose ``isdisjoint`` need not decode every pair."""

    __slots__ = ()
    _mapping: Headers

    def isdisjoint(self, other: Iterable[Any]) -> bool:
        headers = self._mapping
        probe = headers._probe
        if headers._index is None and probe is not None:
            return probe.keys().isdisjoint(other)
        return headers._lookup().keys().isdisjoint(other)


class Headers(Mapping[str, str]):
    """Immutable, case-insensitive HTTP headers, as a response or request carries them.

    A name that occurs several times keeps every value: ``headers["x"]`` joins
    them with ``", "`` (as httpx does) and :meth:`get_list` returns them one by
    one. Iteration yields each distinct name once, lower-cased. The repr shows
    ``[redacted]`` in place of credentials (``Authorization``, ``Cookie``, ...).

    Args:
        headers: A mapping or a sequence of ``(name, value)`` pairs.
    """

    __slots__ = ("_index", "_items", "_load", "_probe", "_raw")

    def __init__(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
    ) -> None:
        self._raw: Sequence[tuple[bytes, bytes]] | None = None
        self._load: Callable[[], Iterable[tuple[str, str]]] | None = None
        self._index: dict[str, list[str]] | None = None
        self._probe: Mapping[str, object] | None = None
        if headers is None:
            self._items: list[tuple[str, str]] | None = []
        elif isinstance(headers, Headers):
            self._items = headers.multi_items()
        elif isinstance(headers, Mapping):
            self._items = [(str(k), str(v)) for k, v in headers.items()]
        else:
            self._items = [(str(k), str(v)) for k, v in headers]

    @classmethod
    def from_raw(
        cls, raw: Sequence[tuple[bytes, bytes]], probe: Mapping[str, object] | None = None
    ) -> Headers:
        """Build headers from raw ``(name, value)`` byte pairs, decoded on first use.

        Engines hand over what they read off the wire; decoding (latin-1, as
        HTTP/1.1 specifies) is deferred until a header is looked at.

        Args:
            raw: The pairs as read.
            probe: The engine's own case-insensitive header mapping, if it has
                one (aiohttp's ``CIMultiDictProxy``): ``name in headers`` and
                ``headers.keys().isdisjoint(names)`` ask it instead of decoding
                every pair (the client asks every reply for its rate-limit
                headers). Its ``keys()`` must compare names case-insensitively.
        """
        self = cls.__new__(cls)
        self._raw = raw
        self._load = None
        self._items = None
        self._index = None
        self._probe = probe
        return self

    @classmethod
    def from_loader(cls, load: Callable[[], Iterable[tuple[str, str]]]) -> Headers:
        """Build headers whose ``(name, value)`` pairs are fetched on first use.

        An engine passes a function that reads its own header object, so a
        response whose request headers are never looked at costs nothing.
        """
        self = cls.__new__(cls)
        self._raw = None
        self._load = load
        self._items = None
        self._index = None
        self._probe = None
        return self

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair in wire order, names as received."""
        items = self._items
        if items is None:
            if self._load is not None:
                items = [(str(k), str(v)) for k, v in self._load()]
                self._load = None
            else:
                raw = self._raw or ()
                items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
            self._items = items
        return list(items)

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self.multi_items():
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def get_list(self, name: str) -> list[str]:
        """All values of header ``name`` (case-insensitive), in order; ``[]`` if absent."""
        return list(self._lookup().get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        values = self._lookup().get(name.lower()) if isinstance(name, str) else None
        if values is None:
            raise KeyError(name)
        return values[0] if len(values) == 1 else ", ".join(values)

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str) -> str: ...
    @overload
    def get(self, name: str, /, default: Any) -> Any: ...
    def get(self, name: str, /, default: Any = None) -> Any:
        """The value of header ``name`` (case-insensitive), or ``default``."""
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if self._index is None and self._probe is not None:
            return name in self._probe
        return name.lower() in self._lookup()

    def keys(self) -> KeysView[str]:
        """The distinct names, lower-cased; ``isdisjoint`` asks the engine's headers when it can."""
        names = _Names.__new__(_Names)  # KeysView's __init__ only sets this: one call less
        names._mapping = self
        return names

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup())

    def __len__(self) -> int:
        return len(self._lookup())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        theirs = other if isinstance(other, Headers) else Headers(other)
        return self._joined() == theirs._joined()

    def _joined(self) -> dict[str, str]:
        return {name: ", ".join(values) for name, values in self._lookup().items()}

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = {
            name: REDACTED if is_secret_header(name) else self[name] for name in self._lookup()
        }
        return f"Headers({shown!r})"
