"""Keeping secrets out of reprs and error messages.

URLs lose their userinfo (``user:password@``) and the values of query
parameters that usually carry credentials; free text has every known secret
value replaced by ``[redacted]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

from ._headers import REDACTED, SENSITIVE_HEADERS

__all__ = ["SECRET_QUERY_PARAMS", "redact_url", "scrub", "secret_values"]

SECRET_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        "access_token",
        "api-key",
        "api_key",
        "apikey",
        "auth",
        "client_secret",
        "code",
        "id_token",
        "key",
        "password",
        "passwd",
        "refresh_token",
        "secret",
        "sig",
        "signature",
        "token",
        "x-api-key",
    }
)
"""Query parameters whose values are shown as ``[redacted]`` (compared lower-cased)."""

_MIN_SECRET = 4  # shorter values would mangle messages and are not worth hiding


def redact_url(url: str) -> str:
    """Return ``url`` fit for a message: no userinfo, no credential-like query values."""
    if "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        fields = []
        for field in query.split("&"):
            name, sep, _value = field.partition("=")
            if sep and unquote(name).lower() in SECRET_QUERY_PARAMS:
                field = f"{name}={REDACTED}"
            fields.append(field)
        query = "&".join(fields)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secret_values(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The secret values among ``headers``: whole values and their credential part."""
    found: set[str] = set()
    for name, value in headers:
        if name.lower() in SENSITIVE_HEADERS and value:
            found.add(value)
            scheme, _, credential = value.partition(" ")
            if credential:
                found.add(credential.strip())
            elif scheme != value:
                found.add(scheme)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in ``secrets`` found in ``text`` by ``[redacted]``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, REDACTED)
    return text
