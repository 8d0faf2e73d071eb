"""The JSON forms of replies and errors, for any transport.

A transport's :class:`~pynector.cli.CLISupport` decides how its own replies
look; these are the forms every transport gets by default.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynector.redact import Scrubber

__all__ = ["bytes_json", "error_json", "jsonable"]

_MAX_DEPTH = 64


def bytes_json(data: bytes, secrets: Scrubber | None = None) -> Any:
    """The UTF-8 text of ``data``, or ``{"base64": ...}`` (scrubbed first) when it is not text."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if secrets is not None:
            data = secrets.scrub_bytes(data)
        return {"base64": base64.b64encode(data).decode("ascii")}


def jsonable(value: Any, secrets: Scrubber | None = None, _depth: int = 0) -> Any:
    """A JSON-serialisable form of any reply.

    An object with ``model_dump`` (pydantic models, such as the SDKs' replies)
    becomes what ``model_dump(mode="json")`` returns; a dataclass an object of
    its fields; bytes the UTF-8 text, or ``{"base64": ...}`` when they are not
    text; dicts, lists and JSON scalars stay as they are; anything else its
    ``repr``. Bytes that are not text are scrubbed of ``secrets`` before they
    are encoded.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth > _MAX_DEPTH:
        return repr(value)
    depth = _depth + 1
    if isinstance(value, Mapping):
        return {str(key): jsonable(item, secrets, depth) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item, secrets, depth) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes_json(bytes(value), secrets)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return jsonable(dump(mode="json"), secrets, depth)
        except Exception:  # a model that cannot dump itself is shown as its repr
            return repr(value)
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(
            {field.name: getattr(value, field.name) for field in dataclasses.fields(value)},
            secrets,
            depth,
        )
    return repr(value)


def error_json(
    exc: BaseException, secrets: Scrubber | None = None, reply: Any | None = None
) -> dict[str, Any]:
    """``{"type", "message", "status_code"?, "retryable", "response"?}`` for an error.

    Args:
        exc: The error.
        secrets: Scrubbed from a binary body before it is encoded.
        reply: The JSON form of the reply the error carries (an HTTP status
            error's response), if any: the ``"response"``.
    """
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        error["status_code"] = status
    error["retryable"] = bool(getattr(exc, "retryable", False))
    if reply is not None:
        error["response"] = reply
    return error
