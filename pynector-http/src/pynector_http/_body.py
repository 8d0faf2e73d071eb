"""Encoding a request's body once, the same way for every engine.

``json`` is compact UTF-8 JSON, ``data`` a URL-encoded form, ``data`` with
``files`` a multipart form, ``content`` raw bytes (``str`` as UTF-8) or an
async iterable of bytes sent chunked. The encodings are httpx's, so both
engines put the same bytes on the wire.
"""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

from pynector.errors import ConfigurationError

__all__ = ["Body", "StreamedBody", "encode_body", "has_body", "is_streamed"]

Body = bytes | AsyncIterable[bytes] | None
"""What an engine sends: bytes, a stream of bytes (chunked), or nothing."""


class BodyResentError(OSError):
    """An engine tried to send a :class:`StreamedBody` again."""


class StreamedBody:
    """A request body given as an async iterable: it can be sent once only.

    It records whether the engine has started to read it. After that the
    request cannot be sent again: a retry, a redirect or a reconnect would send
    what is left of it (after one complete attempt, nothing) as if it were the
    whole body.
    """

    __slots__ = ("_iterator", "_source", "started")

    def __init__(self, source: AsyncIterable[Any]) -> None:
        self._source = source
        self._iterator: AsyncIterator[Any] | None = None
        self.started = False

    def __aiter__(self) -> StreamedBody:
        if self.started:
            # An engine starting over with a body it already sent: aiohttp before
            # 3.14 did so on its own, on a new connection, after a kept-alive one
            # broke. Failing here is that connection's failure (an OSError).
            raise BodyResentError(
                "the connection broke after the request's body was sent, and a body "
                "given as an async iterable cannot be sent again"
            )
        return self

    async def __anext__(self) -> bytes:
        self.started = True
        iterator = self._iterator
        if iterator is None:
            iterator = self._iterator = self._source.__aiter__()
        return _chunk_bytes(await iterator.__anext__())


def _chunk_bytes(chunk: object) -> bytes:
    """One chunk of an async iterable body as bytes; any other type is the caller's mistake.

    Raised here, the error reaches the caller as it is: aiohttp would report
    a ``str`` chunk as a broken connection, httpx2 as a ``TypeError``.
    """
    if type(chunk) is bytes:
        return chunk
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    kind = type(chunk).__name__
    hint = "yield chunk.encode()" if isinstance(chunk, str) else "yield bytes"
    raise ConfigurationError(
        f"'content' is an async iterable that yielded a {kind}: it must yield bytes "
        f"({hint}), or pass the whole body as bytes or str"
    )


def is_streamed(content: object) -> bool:
    """Whether ``content`` is a body that can be read only once (an async iterable)."""
    return content is not None and not isinstance(content, str | bytes | bytearray | memoryview)


def has_body(data: Mapping[str, Any]) -> bool:
    """Whether a checked request dict has a body (as :func:`encode_body` decides)."""
    return (
        data.get("json") is not None
        or bool(data.get("files"))
        or bool(data.get("data"))
        or data.get("content") is not None
    )


def _form_items(form: Mapping[Any, Any]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, value in form.items():
        values = value if isinstance(value, list | tuple) else (value,)
        for item in values:
            if item is True or item is False:
                items.append((str(key), "true" if item else "false"))
            else:
                items.append((str(key), "" if item is None else str(item)))
    return items


def _multipart(form: Mapping[str, Any] | None, files: Any) -> tuple[bytes, str]:
    import httpx2  # a hard dependency; only multipart bodies need it on the aiohttp engine

    request = httpx2.Request("POST", "http://localhost/", data=form, files=files)
    return request.read(), request.headers["Content-Type"]


def encode_body(data: Mapping[str, Any]) -> tuple[Body, str | None]:
    """Encode the body of a checked request dict; return it and its Content-Type.

    Raises:
        ConfigurationError: If a value cannot be encoded (not JSON-serialisable,
            a form value that is not a string or number, a bad file entry).
    """
    try:
        value = data.get("json")
        if value is not None:
            text = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            return text.encode(), "application/json"
        form = data.get("data")
        files = data.get("files")
        if files:
            return _multipart(form, files)
        if form:
            return urlencode(_form_items(form)).encode(), "application/x-www-form-urlencoded"
    except RecursionError:
        raise ConfigurationError(
            "'json' is nested too deeply to be encoded; flatten it, or encode it yourself "
            "and send the bytes as 'content'"
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:  # a bad 'files' entry: AttributeError
        keys = [key for key in ("json", "data", "files") if key in data]
        raise ConfigurationError(
            f"the request data could not be encoded ({type(exc).__name__}: {exc}); check "
            f"{', '.join(repr(k) for k in keys) or 'the values'}: 'json' must be "
            "JSON-serialisable, 'params' and 'data' dicts of strings or numbers, 'files' "
            "a dict of name -> file or (filename, content[, content_type])"
        ) from exc
    content = data.get("content")
    if content is None:
        return None, None
    if isinstance(content, str):
        try:
            return content.encode(), None
        except UnicodeEncodeError as exc:
            raise ConfigurationError(
                f"'content' is a str that cannot be sent as UTF-8 ({exc}); remove the lone "
                "surrogates, or pass the bytes you mean to send"
            ) from None
    if isinstance(content, bytes):
        return content, None
    if isinstance(content, bytearray | memoryview):
        return bytes(content), None
    return StreamedBody(content), None
