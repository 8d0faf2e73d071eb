"""The files of ``pynector batch``: request lines in, result lines out.

- :class:`RequestParser` turns one input line into a :class:`RequestLine` (its
  id and the request data for the chosen transport), or raises
  :class:`LineError` saying what is wrong. It reads a JSON object and hands it
  to the transport's :class:`~pynector.cli.CLISupport`, which reads pynector's
  own format (the request data, with an optional top-level ``id``) and
  whatever provider formats the transport knows.
- :func:`scan_output` reads an existing output file: which ids are done, with
  which outcome, and whether its last line was torn by a crash;
  :func:`repair_output` and :func:`drop_failed` fix it up before a resumed run;
  :func:`fsync_directory` makes a rename durable.
- :class:`IdSet`: ids seen so far, in 16 bytes or less per id.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ._errors import LineError
from ._formats import OutputFormat, result_id

if TYPE_CHECKING:
    from ._support import CLISupport

__all__ = [
    "IdSet",
    "LineError",
    "OutputState",
    "RequestLine",
    "RequestParser",
    "count_lines",
    "drop_failed",
    "fsync_directory",
    "id_key",
    "iter_lines",
    "repair_output",
    "scan_output",
]


def id_key(value: str | int) -> int:
    """A 64-bit digest of an id: ``5`` and ``"5"`` are different ids."""
    if isinstance(value, int):
        raw = b"i%d" % value
    else:
        raw = b"s" + value.encode("utf-8", "surrogatepass")
    return int.from_bytes(blake2b(raw, digest_size=8).digest(), "little") or 1


class IdSet:
    """A set of ids kept as 64-bit digests in one flat array (open addressing).

    About 16 bytes per id, against roughly 100 for a Python ``set`` of strings,
    so a run over millions of lines stays small. Two different ids share a
    digest with a probability below 1e-7 for ten million ids.
    """

    __slots__ = ("_len", "_mask", "_slots")

    def __init__(self) -> None:
        self._slots = array("Q", bytes(8 * 1024))
        self._mask = 1023
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: int) -> bool:
        slots, mask = self._slots, self._mask
        index = key & mask
        while True:
            found = slots[index]
            if found == key:
                return True
            if found == 0:
                return False
            index = (index + 1) & mask

    def add(self, key: int) -> bool:
        """Add a digest from :func:`id_key`; return ``False`` if it was there already."""
        slots, mask = self._slots, self._mask
        index = key & mask
        while True:
            found = slots[index]
            if found == 0:
                break
            if found == key:
                return False
            index = (index + 1) & mask
        slots[index] = key
        self._len += 1
        if self._len * 2 > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._mask = mask = len(old) * 2 - 1
        self._slots = slots = array("Q", bytes(8 * (mask + 1)))
        for key in old:
            if key:
                index = key & mask
                while slots[index]:
                    index = (index + 1) & mask
                slots[index] = key


@dataclass(slots=True)
class RequestLine:
    """One request read from the input.

    Attributes:
        line: Its line number in the input file (1-based).
        id: Its id: the line's ``id`` (or ``custom_id``), else the line number.
        data: The request data for the transport.
    """

    line: int
    id: str | int
    data: Any


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for every line of ``path`` that is not blank."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            if raw.strip():
                yield number, raw


def count_lines(path: Path) -> int:
    """The number of lines of ``path`` that are not blank."""
    with open(path, "rb") as file:
        return sum(1 for raw in file if raw.strip())


class RequestParser:
    """Read input lines as requests for one transport.

    Args:
        support: What the command line knows about the transport: its
            :meth:`~pynector.cli.CLISupport.read_line` turns a line's JSON object
            into the id and the request data.
        options: The transport options given on the command line.
    """

    __slots__ = ("_options", "_read")

    def __init__(self, support: CLISupport, options: Mapping[str, Any] | None = None) -> None:
        self._read = support.read_line
        self._options: Mapping[str, Any] = options or {}

    def parse(self, number: int, raw: bytes) -> RequestLine:
        """Parse one line.

        Raises:
            LineError: If the line is not a JSON object, its id is not a string
                or an integer, or the transport cannot read it as a request.
        """
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise LineError(f"not valid JSON ({exc})") from None
        except RecursionError:
            raise LineError(
                "nested too deeply to be read (objects or arrays inside each other hundreds "
                "of levels deep); flatten it"
            ) from None
        if type(data) is not dict:
            raise LineError(
                f"a request line must be a JSON object, not {type(data).__name__}: "
                f'e.g. {{"id": "a1", "path": "/users/1"}}'
            )
        request_id, request = self._read(data, self._options)
        return RequestLine(number, number if request_id is None else request_id, request)


# -- the output file ---------------------------------------------------------------


@dataclass(slots=True)
class OutputState:
    """What an existing output file holds.

    Attributes:
        ok: Ids whose result line says ``"ok": true``.
        failed: Ids whose result line says ``"ok": false``.
        results: The number of result lines.
        foreign: Line numbers of complete lines that are not result lines.
        keep: The byte length to keep: everything up to the torn line, if any.
        torn: The size in bytes of a torn last line (cut short by a crash).
        unterminated: Whether the last line is a whole result missing its newline.
        formats: How many result lines there are of each output format.
    """

    ok: IdSet = field(default_factory=IdSet)
    failed: IdSet = field(default_factory=IdSet)
    results: int = 0
    foreign: list[int] = field(default_factory=list)
    keep: int = 0
    torn: int = 0
    unterminated: bool = False
    formats: dict[OutputFormat, int] = field(default_factory=dict)


def _result(raw: bytes, formats: dict[OutputFormat, int] | None = None) -> tuple[int, bool] | None:
    """``(id_key, ok)`` of a result line in any output format, or ``None`` if it is not one."""
    found = result_id(raw)
    if found is None:
        return None
    if formats is not None:
        formats[found.format] = formats.get(found.format, 0) + 1
    return id_key(found.id), found.ok


def scan_output(path: Path) -> OutputState:
    """Read the result lines of ``path`` (an empty state if it does not exist).

    A last line without its newline was cut short by a crash or a kill: when it
    is a whole result it is kept (:func:`repair_output` adds the newline),
    otherwise it is dropped and its request is sent again.
    """
    state = OutputState()
    if not path.exists():
        return state
    offset = 0
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            complete = raw.endswith(b"\n")
            result = _result(raw, state.formats) if raw.strip() else None
            if not complete:
                if result is None:
                    state.torn = len(raw)
                    break
                state.unterminated = True
            offset += len(raw)
            if result is not None:
                state.results += 1
                (state.ok if result[1] else state.failed).add(result[0])
            elif raw.strip():
                state.foreign.append(number)
    state.keep = offset
    return state


def repair_output(file: Any, state: OutputState) -> None:
    """Make the output end with a whole line: drop a torn line, finish an unterminated one.

    Args:
        file: The output file, open for appending in binary mode.
        state: What :func:`scan_output` found in it.
    """
    if state.torn:
        file.truncate(state.keep)
    elif state.unterminated:
        file.write(b"\n")
        file.flush()


def drop_failed(
    path: Path, lock: Callable[[BinaryIO], None] | None = None
) -> tuple[int, BinaryIO | None]:
    """Rewrite ``path`` without its ``"ok": false`` lines.

    The new file is written next to the old one, flushed to disk and renamed
    over it (then the directory is synced), so a crash at any point leaves one
    of the two whole. ``lock`` is called on the new file before anything is
    written to it: the caller keeps the old file locked until the rename, so
    the path is never unlocked while it is rewritten.

    Returns:
        How many lines were dropped, and when there were any, the new file,
        open for appending (locked by ``lock``); the caller closes it.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a crashed run with the same pid; ours while OUT is locked
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    target = open(os.open(temporary, flags, 0o600), "ab", buffering=0)  # noqa: SIM115
    dropped = 0
    try:
        if lock is not None:
            lock(target)
        writer = io.BufferedWriter(target, 1 << 16)
        with open(path, "rb") as source:
            for raw in source:
                result = _result(raw) if raw.endswith(b"\n") else None
                if result is not None and not result[1]:
                    dropped += 1
                    continue
                writer.write(raw)
        writer.flush()
        writer.detach()  # ``target`` stays open: it is returned
        os.fsync(target.fileno())
        if dropped:
            import shutil

            shutil.copymode(path, temporary)
            os.replace(temporary, path)
            fsync_directory(path.parent)
            return dropped, target
    except BaseException:
        target.close()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    target.close()
    return 0, None


def fsync_directory(directory: Path) -> None:
    """Flush ``directory`` to disk, so a file renamed or created in it stays after a crash.

    A no-op where directories cannot be opened or synced (Windows, some file
    systems).
    """
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
