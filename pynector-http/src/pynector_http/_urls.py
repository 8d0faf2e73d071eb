"""Engine-neutral URL work on the request path: targets, origins, query strings, redirects.

Both engines receive a finished absolute URL string from here, so a request
resolves to the same URL whichever engine sends it. The rules follow httpx's:
``base_url`` is a prefix (``https://h/api`` + ``/users`` = ``https://h/api/users``),
a query in ``base_url`` is kept (:func:`merge_query`), ``params`` are merged
into a query already in the URL (a key given in ``params`` replaces that key),
and redirects change the method as browsers do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

from pynector.errors import ProtocolError
from pynector.redact import redact_url
from pynector.redact import url_secrets as query_secrets

__all__ = [
    "REDIRECT_STATUSES",
    "Origin",
    "Target",
    "is_absolute",
    "merge_query",
    "origin_of",
    "query_secrets",
    "redirect",
    "split_absolute",
    "with_params",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
"""Statuses whose ``Location`` is followed when ``follow_redirects`` is on."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 scheme, then "//": an absolute URL. "/login?next=https://x" is a path.
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_absolute(target: str) -> bool:
    """Whether ``target`` is an absolute URL (``scheme://...``) or ``//host/...``.

    Only a scheme at the start counts: ``/login?next=https://x`` is a path.
    """
    return target.startswith("//") or ("://" in target and _ABSOLUTE.match(target) is not None)


def _query_key(field: str) -> str:
    return unquote(field.partition("=")[0].replace("+", " "))


def merge_query(base_query: str, url: str) -> str:
    """Put ``base_query`` (``base_url``'s query) in front of ``url``'s own query.

    A key that ``url``'s query also has is taken from ``url`` (all of its
    values), so a path's ``?api-version=...`` overrides ``base_url``'s. Both
    are kept as written (no re-encoding).
    """
    if not base_query:
        return url
    head, hash_mark, fragment = url.partition("#")
    path, _, query = head.partition("?")
    fields = [field for field in query.split("&") if field]
    own = {_query_key(field) for field in fields}
    kept = [field for field in base_query.split("&") if field and _query_key(field) not in own]
    return f"{path}?{'&'.join([*kept, *fields])}{hash_mark}{fragment}"


class Origin(NamedTuple):
    """Scheme, lower-case host and port (the default port filled in)."""

    scheme: str
    host: str
    port: int


class Target(NamedTuple):
    """An absolute URL split into what the transport needs."""

    url: str
    origin: Origin
    credentials: tuple[str, str] | None


def origin_of(parts: SplitResult) -> Origin:
    """The origin of a split absolute URL (``ValueError`` for a bad port)."""
    scheme = parts.scheme.lower()
    port = parts.port
    return Origin(
        scheme, parts.hostname or "", _DEFAULT_PORTS.get(scheme, 0) if port is None else port
    )


def split_absolute(url: str) -> Target:
    """Split an absolute URL, removing credentials from it.

    Raises:
        ValueError: If the URL is malformed (a bad port, an unbalanced ``[``).
    """
    parts = urlsplit(url)
    origin = origin_of(parts)
    credentials = None
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        username, _, password = userinfo.partition(":")
        credentials = (unquote(username), unquote(password))
        url = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return Target(url, origin, credentials)


def _primitive(value: Any) -> str:
    # As httpx: JSON-style booleans, None as an empty value.
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def _param_items(params: Any) -> list[tuple[str, str]]:
    if isinstance(params, str | bytes):
        text = params.decode("ascii") if isinstance(params, bytes) else params
        return parse_qsl(text, keep_blank_values=True)
    pairs = params.items() if isinstance(params, Mapping) else params
    items: list[tuple[str, str]] = []
    for key, value in pairs:
        if isinstance(value, list | tuple):
            items.extend((str(key), _primitive(item)) for item in value)
        else:
            items.append((str(key), _primitive(value)))
    return items


def with_params(url: str, params: Any) -> str:
    """Merge ``params`` into ``url``'s query; a key in ``params`` replaces that key.

    Raises:
        TypeError, ValueError: If ``params`` is not a mapping, pairs or a string.
    """
    items = _param_items(params)
    if not items:
        return url
    head, hash_mark, fragment = url.partition("#")
    path, _, query = head.partition("?")
    if query:
        merged: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            merged.setdefault(key, []).append(value)
        given: dict[str, list[str]] = {}
        for key, value in items:
            given.setdefault(key, []).append(value)
        merged.update(given)
        items = [(key, value) for key, values in merged.items() for value in values]
    return f"{path}?{urlencode(items)}{hash_mark}{fragment}"


def redirect(method: str, url: str, status: int, location: str) -> tuple[str, str]:
    """The method and absolute URL of the request that follows a redirect.

    As httpx (and browsers): 303 turns any method but HEAD into GET, 302 turns
    any but HEAD and QUERY into GET, 301 turns POST into GET; 307 and 308 keep
    the method. A relative ``Location`` is resolved against ``url``, the
    fragment is kept, and credentials in the ``Location`` are dropped.

    Raises:
        ProtocolError: If ``Location`` is not an http(s) URL.
    """
    if (
        (status == 303 and method != "HEAD")
        or (status == 302 and method not in ("HEAD", "QUERY"))
        or (status == 301 and method == "POST")
    ):
        method = "GET"
    current = urlsplit(url)
    try:
        parts = urlsplit(location.strip())
        if parts.scheme and not parts.netloc:
            # A malformed "absolute" Location without a host: keep the host.
            parts = parts._replace(netloc=current.netloc)
        parts = urlsplit(urljoin(url, urlunsplit(parts)))
        origin_of(parts)
    except ValueError as exc:
        raise ProtocolError(
            f"{method} {redact_url(url)}: the server redirected to an invalid URL "
            f"{redact_url(location)!r} ({exc})"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProtocolError(
            f"{method} {redact_url(url)}: the server redirected to {redact_url(location)!r}, "
            "which is not an http:// or https:// URL"
        )
    if current.fragment and not parts.fragment:
        parts = parts._replace(fragment=current.fragment)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return method, urlunsplit(parts)
