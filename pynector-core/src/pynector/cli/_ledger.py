"""The files of ``pynector batch``: request lines in, result lines out.

- :class:`RequestParser` turns one input line into a :class:`RequestLine` (its
  id and the request data for the chosen transport), or raises
  :class:`LineError` saying what is wrong. It reads pynector's own format (the
  request data, with an optional top-level ``id``), the OpenAI Batch API format
  (``custom_id``, ``method``, ``url``, ``body``) and the Anthropic Message
  Batches format (``custom_id``, ``params``).
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

__all__ = [
    "OPENAI_OPERATIONS",
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

OPENAI_OPERATIONS: dict[str, str] = {
    "/v1/chat/completions": "chat.completions.create",
    "/v1/embeddings": "embeddings.create",
    "/v1/responses": "responses.create",
    "/v1/completions": "completions.create",
    "/v1/moderations": "moderations.create",
    "/v1/messages": "messages.create",
}
"""Batch API ``url`` -> the sdk transport's ``operation``."""

_OPENAI_KEYS = frozenset({"custom_id", "method", "url", "body"})
_HTTP_BODY_KEYS = ("json", "data", "content", "files")
_ANTHROPIC_KEYS = frozenset({"custom_id", "params"})


class LineError(ValueError):
    """An input line that cannot be sent; the message says why."""


def id_key(value: str | int) -> int:
    """A 64-bit digest of an id: ``5`` and ``"5"`` are different ids."""
    if isinstance(value, int):
        raw = b"i%d" % value
    else:
        raw = b"s" + value.encode("utf-8", "surrogatepass")
    return int.from_bytes(blake2b(raw, digest_size=8).digest(), "little") or 1


def check_id(value: object, what: str = "id") -> str | int:
    """Return ``value`` if it can be an id (a non-empty string or an integer).

    Raises:
        LineError: Otherwise.
    """
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise LineError(f'"{what}" must be a non-empty string or an integer, not {value!r:.40}')


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
        transport: The transport's name: ``"http"`` gets Batch API lines as
            HTTP requests (``POST url`` with ``body`` as JSON); every other
            transport gets the body plus ``"operation"`` (from the url).
        base_url: The ``--base-url``, if any: a Batch API url ``/v1/...`` under a
            base URL that ends in ``/v1`` loses its ``/v1``.
    """

    __slots__ = ("_http", "_strip_v1")

    def __init__(self, transport: str, base_url: str | None = None) -> None:
        self._http = transport == "http"
        path = urlsplit(base_url).path.rstrip("/") if base_url else ""
        self._strip_v1 = path.endswith("/v1")

    def parse(self, number: int, raw: bytes) -> RequestLine:
        """Parse one line.

        Raises:
            LineError: If the line is not a JSON object, its id is not a string
                or an integer, or it is a malformed Batch API line.
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
        if "custom_id" in data:
            return self._batch_api(number, data)
        request_id = check_id(data.pop("id")) if "id" in data else number
        if self._http and "method" not in data and any(key in data for key in _HTTP_BODY_KEYS):
            data["method"] = "POST"  # a body and no method: POST, as curl does
        return RequestLine(number, request_id, data)

    def _batch_api(self, number: int, line: dict[str, Any]) -> RequestLine:
        keys = set(line)
        request_id = check_id(line["custom_id"], "custom_id")
        if "params" in keys:  # Anthropic Message Batches
            if keys != _ANTHROPIC_KEYS:
                raise LineError(_extra_keys(keys - _ANTHROPIC_KEYS, "custom_id, params"))
            params = line["params"]
            if type(params) is not dict:
                raise LineError('"params" must be a JSON object of the request\'s arguments')
            if self._http:
                path = "/messages" if self._strip_v1 else "/v1/messages"
                return RequestLine(
                    number, request_id, {"method": "POST", "path": path, "json": params}
                )
            return RequestLine(number, request_id, params)
        if not keys <= _OPENAI_KEYS or not {"url", "body"} <= keys:
            extra = keys - _OPENAI_KEYS
            if extra:
                raise LineError(_extra_keys(extra, "custom_id, method, url, body"))
            missing = ", ".join(sorted({"url", "body"} - keys))
            raise LineError(f"a Batch API line (it has custom_id) needs {missing}")
        url, body = line["url"], line["body"]
        method = line.get("method", "POST")
        if not isinstance(url, str) or not url:
            raise LineError('"url" must be a string such as "/v1/chat/completions"')
        if type(body) is not dict:
            raise LineError('"body" must be a JSON object of the request\'s arguments')
        if not isinstance(method, str) or not method.isalpha():
            raise LineError(f'"method" must be an HTTP method such as "POST", not {method!r:.40}')
        if self._http:
            request: dict[str, Any] = {"method": method.upper(), "json": body}
            if "://" in url:
                request["url"] = url
            else:
                if self._strip_v1 and url.startswith("/v1/"):
                    url = url[3:]
                request["path"] = url
            return RequestLine(number, request_id, request)
        if method.upper() != "POST":
            raise LineError(f'"method" must be "POST" for a Batch API line, not {method!r:.40}')
        path = urlsplit(url).path.rstrip("/") if "://" in url else url.rstrip("/")
        if not path.startswith("/v1/"):
            path = "/v1" + (path if path.startswith("/") else "/" + path)
        operation = OPENAI_OPERATIONS.get(path)
        if operation is None:
            known = ", ".join(OPENAI_OPERATIONS)
            raise LineError(f'"url" {url!r:.60} is not one of the supported endpoints: {known}')
        return RequestLine(number, request_id, {**body, "operation": operation})


def _extra_keys(extra: set[str], expected: str) -> str:
    names = ", ".join(sorted(extra))
    return (
        f"a Batch API line (it has custom_id) has unexpected key(s) {names}; "
        f"it takes only {expected}"
    )


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
    """

    ok: IdSet = field(default_factory=IdSet)
    failed: IdSet = field(default_factory=IdSet)
    results: int = 0
    foreign: list[int] = field(default_factory=list)
    keep: int = 0
    torn: int = 0
    unterminated: bool = False


def _result(raw: bytes) -> tuple[int, bool] | None:
    """``(id_key, ok)`` of a result line, or ``None`` if it is not one."""
    try:
        record = json.loads(raw)
        ok = record["ok"]
        key = id_key(check_id(record["id"]))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(ok, bool):
        return None
    return key, ok


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
            result = _result(raw) if raw.strip() else None
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
