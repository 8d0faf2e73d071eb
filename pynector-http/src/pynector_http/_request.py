"""Checking the request dict and per-request options before anything is sent.

Every mistake becomes a :class:`~pynector.errors.ConfigurationError` that
names the key, what was wrong with it, and the corrected call.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any, NoReturn, TypedDict

from pynector.errors import ConfigurationError
from pynector.redact import REDACTED, is_secret_header, redact_url

__all__ = [
    "BODY_KEYS",
    "IDEMPOTENT_METHODS",
    "REQUEST_KEYS",
    "REQUEST_OPTIONS",
    "HTTPRequest",
    "check_data_keys",
    "check_headers",
    "check_options",
    "check_target_text",
    "fail",
    "request_method",
    "unknown_keys",
    "unusable_data",
]


class HTTPRequest(TypedDict, total=False):
    """The request dict of the ``http`` transport; every key is optional.

    A plain ``dict`` at run time: ``client.request({"path": "/users"})``. For a
    type checker, a client built as ``Pynector(transport=HTTPTransport(...))``
    takes this type, so a misspelt key (``"parms"``) or a value of the wrong
    type is an error before anything runs. The transport checks the same rules
    at run time (:meth:`HTTPTransport.validate`).

    Attributes:
        path: Relative to ``base_url`` (``"/users"``).
        url: An absolute URL, or one relative to ``base_url``; not with ``path``.
        method: ``GET`` by default, ``POST`` when there is a body.
        params: Query parameters (a dict, list values repeating the key; pairs;
            or a string); they replace the keys the URL's query repeats.
        headers: The request's own headers, over the transport's defaults.
        json: A JSON body.
        data: Form fields (with ``files``: a multipart form).
        content: A raw body: bytes, a string (UTF-8) or an async iterable of
            bytes (sent once: never retried once read).
        files: Multipart files: name -> file object, bytes, or ``(filename,
            content[, content_type])``.
    """

    path: str
    url: str
    method: str
    params: Mapping[str, Any] | Sequence[tuple[str, Any]] | str
    headers: Mapping[str, str]
    json: Any
    data: Mapping[str, Any]
    content: bytes | bytearray | memoryview | str | AsyncIterable[bytes | bytearray | memoryview]
    files: Mapping[str, Any]


REQUEST_KEYS: frozenset[str] = frozenset(
    {"path", "url", "method", "params", "headers", "json", "data", "content", "files"}
)
"""The keys an HTTP request dict may have."""

REQUEST_OPTIONS: frozenset[str] = frozenset({"follow_redirects", "idempotent"})
"""The per-request options the HTTP transport accepts (``client.request(data, **options)``)."""

IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""Methods that RFC 9110 defines as idempotent: a failed attempt may be repeated."""

_STANDARD_METHODS = IDEMPOTENT_METHODS | {"POST", "PATCH", "CONNECT", "QUERY"}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Visible ASCII with spaces and tabs inside: no CR/LF (header injection), NUL,
# DEL, or whitespace around the value (which HTTP does not count as part of it).
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?")
# Framing is the engine's: it sets these from the body.
_FRAMING = frozenset({"content-length", "transfer-encoding"})
_EXAMPLE = "{'path': '/users', 'method': 'GET'}"
# Control characters (CR/LF would split the request line) and lone surrogates
# (no encoding can send them) in a path or URL.
_BAD_TARGET_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")

BODY_KEYS: frozenset[str] = frozenset({"json", "data", "content", "files"})
"""The keys that give a request a body."""

# Conflicting bodies: each pair is rejected with the reason.
_CONFLICTS = (
    ("json", "data", "'json' sends a JSON body and 'data' a form; send one of them"),
    ("json", "content", "'json' sends a JSON body and 'content' raw bytes; send one of them"),
    ("json", "files", "'files' sends a multipart form; put extra fields in 'data', not 'json'"),
    ("content", "data", "'content' sends raw bytes and 'data' a form; send one of them"),
    ("content", "files", "'files' sends a multipart form; it cannot be combined with 'content'"),
)


def fail(message: str) -> NoReturn:
    """Raise a :class:`ConfigurationError` about the request data."""
    raise ConfigurationError(message)


# Names people reach for that are not ours, and the key they mean.
_ALIASES = {
    "body": "content (raw bytes/str) or 'json'",
    "payload": "json",
    "query": "params",
    "querystring": "params",
    "form": "data",
    "header": "headers",
    "endpoint": "path",
    "uri": "url",
    "verb": "method",
    "file": "files",
}


def unknown_keys(data: Mapping[Any, Any], known: frozenset[str], what: str) -> NoReturn:
    """Raise for the keys of ``data`` not in ``known``, suggesting the closest names."""
    unknown = [key for key in data if key not in known]
    hints = []
    for key in unknown:
        alias = _ALIASES.get(str(key).lower())
        close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
        if alias is not None and alias.split(" ")[0] in known:
            hints.append(f"{key!r} -> {alias if ' ' in alias else repr(alias)}")
        elif close:
            hints.append(f"{key!r} -> {close[0]!r}")
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    raise ConfigurationError(
        f"the {what} has unknown key(s) {', '.join(repr(key) for key in unknown)}{hint}; "
        f"the known keys are {', '.join(sorted(known))}"
    )


def request_method(data: Mapping[str, Any]) -> str:
    """The request's method, upper case (``GET`` when absent)."""
    method = data.get("method", "GET")
    if not isinstance(method, str):
        fail(f"'method' must be a string such as 'GET' or 'POST', got {method!r}")
    upper = method.upper()
    if upper not in _STANDARD_METHODS and not _TOKEN.fullmatch(upper):
        fail(f"'method' {method!r} is not an HTTP method; use e.g. 'GET', 'POST', 'PUT'")
    return upper


def check_data_keys(data: object) -> Mapping[str, Any]:
    """Return ``data`` as a mapping of known keys, or raise naming the mistake."""
    if not isinstance(data, Mapping):
        fail(
            f"HTTP request data must be a dict such as {_EXAMPLE}, got "
            f"{type(data).__name__} {data!r:.60}"
        )
    if not data.keys() <= REQUEST_KEYS:
        unknown_keys(data, REQUEST_KEYS, "HTTP request data")
    if BODY_KEYS.isdisjoint(data):
        return data  # no body: nothing more to check (the common GET)
    for first, second, why in _CONFLICTS:
        if data.get(first) is not None and data.get(second) is not None:
            fail(f"the request data has both {first!r} and {second!r}: {why}")
    body = data.get("data")
    if isinstance(body, str | bytes | bytearray):
        fail(
            "'data' is for form fields (a dict); to send raw text or bytes use 'content', "
            f"e.g. {{'method': 'POST', 'path': '/upload', 'content': {body!r:.30}}}"
        )
    if body is not None and not isinstance(body, Mapping):
        fail(f"'data' must be a dict of form fields, got {type(body).__name__}")
    content = data.get("content")
    if content is not None and not (
        isinstance(content, str | bytes | bytearray | memoryview) or hasattr(content, "__aiter__")
    ):
        fail(
            f"'content' must be bytes, str or an async iterable of bytes, got "
            f"{type(content).__name__}; for a JSON body use 'json', for a form use 'data'"
        )
    return data


def check_target_text(key: str, value: str) -> None:
    """Reject control characters and lone surrogates in ``path`` or ``url``.

    The message shows the value escaped (``\\r\\n``), never the raw characters.
    """
    bad = _BAD_TARGET_CHARS.search(value)
    if bad is not None:
        shown = repr(redact_url(value))
        fail(
            f"{key!r} {shown} contains the character {bad.group()!r} at position "
            f"{bad.start()}: a URL may not contain control characters (CR/LF would split "
            "the request) or lone surrogates; percent-encode it (e.g. '%0D%0A' for "
            "'\\r\\n') or remove it"
        )


def unusable_data(exc: BaseException, data: object) -> ConfigurationError:
    """The ``ConfigurationError`` for request data that raised ``exc`` while being used.

    Names the keys of the request that may be at fault and what they must be.
    """
    present = [key for key in sorted(REQUEST_KEYS) if isinstance(data, Mapping) and key in data]
    keys = ", ".join(repr(key) for key in present) or "the request data"
    detail = " ".join(str(exc).split())[:200]
    if isinstance(exc, RecursionError):
        return ConfigurationError(
            f"the request data is nested too deeply to be encoded ({keys}); flatten it, or "
            "encode it yourself and send the bytes as 'content'"
        )
    if isinstance(exc, UnicodeError):
        return ConfigurationError(
            f"the request data has text that cannot be encoded ({type(exc).__name__}: "
            f"{detail}); check {keys}: strings must be valid Unicode (no lone surrogates "
            "such as '\\ud800'), header values ASCII and host names valid"
        )
    return ConfigurationError(
        f"the request data could not be used ({type(exc).__name__}: {detail}); check {keys}: "
        "'json' must be JSON-serialisable, 'params' and 'data' dicts of strings or numbers, "
        "'headers' a dict of strings, 'content' bytes, str or an async iterable of bytes"
    )


def check_headers(headers: object, key: str = "headers") -> Mapping[str, str]:
    """Validate a headers mapping: string names, string values."""
    if not isinstance(headers, Mapping):
        fail(f"{key!r} must be a dict of header names to values, got {type(headers).__name__}")
    for name, value in headers.items():
        if not isinstance(name, str) or not name:
            fail(f"{key!r} has a header name {name!r}; header names must be non-empty strings")
        if not _TOKEN.fullmatch(name):
            fail(
                f"{key!r} has the header name {name!r}, which is not a valid HTTP header "
                "name: use ASCII letters, digits and '-', e.g. 'X-Request-Id'"
            )
        if name.lower() in _FRAMING:
            fail(
                f"{key!r} sets {name!r}: the transport frames the body itself (from 'json', "
                "'data', 'files' or 'content'); remove the header"
            )
        shown = REDACTED if is_secret_header(name) else repr(str(value))
        if not isinstance(value, str):
            fail(
                f"{key!r}[{name!r}] must be a string, got {type(value).__name__}; "
                f"write it as {name!r}: {shown}"
            )
        if not _HEADER_VALUE.fullmatch(value):
            fail(
                f"{key!r}[{name!r}] = {shown} is not a valid HTTP header value: it must be "
                "ASCII without line breaks, other control characters or spaces around it "
                "(percent-encode or base64 other text)"
            )
    return headers


def check_options(options: Mapping[str, Any]) -> tuple[bool | None, bool | None]:
    """Validate per-request options; return ``(follow_redirects, idempotent)``."""
    if not options.keys() <= REQUEST_OPTIONS:
        unknown_keys(options, REQUEST_OPTIONS, "HTTP request options")
    follow = options.get("follow_redirects")
    idempotent = options.get("idempotent")
    for name, value in (("follow_redirects", follow), ("idempotent", idempotent)):
        if value is not None and not isinstance(value, bool):
            fail(f"the request option {name}={value!r} must be True or False")
    return follow, idempotent
