"""Keeping secrets out of reprs, log lines, spans and error messages.

One set of rules for every part of pynector and for third-party transports and
plugins: which header names and query parameters carry credentials, how a URL
is shown, and how known secret values are scrubbed from free text.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SECRET_QUERY_PARAMS",
    "SENSITIVE_HEADERS",
    "Secret",
    "is_secret_header",
    "redact_url",
    "scrub",
    "scrub_bytes",
    "secret_values",
]

REDACTED = "[redacted]"
"""What a hidden value is shown as."""

SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)
"""Lower-case names of the usual credential headers (see :func:`is_secret_header`)."""

# A header whose lower-cased name contains one of these may carry a credential.
_SECRET_HEADER_PARTS = (
    "auth",
    "cookie",
    "token",
    "secret",
    "password",
    "passwd",
    "api-key",
    "apikey",
    "api_key",
    "credential",
    "signature",
    "session",
)

SECRET_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        # Named by the OpenTelemetry HTTP semantic conventions.
        "awsaccesskeyid",
        "signature",
        "sig",
        "x-goog-signature",
        # Common API keys and tokens.
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
        "token",
        "x-amz-credential",
        "x-amz-security-token",
        "x-amz-signature",
        "x-api-key",
        "x-goog-credential",
    }
)
"""Query parameters whose values are hidden (compared lower-cased)."""

_MIN_SECRET = 4  # shorter values would mangle messages and are not worth hiding


def is_secret_header(name: str) -> bool:
    """Whether a header of this name may carry a credential.

    True for the :data:`SENSITIVE_HEADERS` and for any name containing
    ``auth``, ``cookie``, ``token``, ``secret``, ``password``, ``api-key``,
    ``credential``, ``signature`` or ``session``.
    """
    lowered = name.lower()
    return lowered in SENSITIVE_HEADERS or any(part in lowered for part in _SECRET_HEADER_PARTS)


def redact_url(url: str, *, mask: str = REDACTED) -> str:
    """Return ``url`` fit to show: credentials and secret query values masked.

    ``https://user:pw@host/p?token=abc&page=2`` becomes
    ``https://[redacted]:[redacted]@host/p?token=[redacted]&page=2`` (the
    OpenTelemetry rule for ``url.full``, with ``mask="REDACTED"``).
    """
    if "@" not in url and "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{mask}:{mask}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        fields = []
        for field in query.split("&"):
            name, sep, _value = field.partition("=")
            if sep and unquote(name).lower() in SECRET_QUERY_PARAMS:
                field = f"{name}={mask}"
            fields.append(field)
        query = "&".join(fields)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secret_values(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The secret values among ``(name, value)`` header pairs.

    Both whole values and their credential part (``"Bearer abc"`` gives
    ``"Bearer abc"`` and ``"abc"``), ready for :func:`scrub`.
    """
    found: set[str] = set()
    for name, value in headers:
        if value and is_secret_header(name):
            found.add(value)
            scheme, _, credential = value.partition(" ")
            if credential:
                found.add(credential.strip())
            elif scheme != value:
                found.add(scheme)
    return found


def scrub(text: str, secrets: Iterable[str], *, mask: str = REDACTED) -> str:
    """Replace every secret of ``secrets`` found in ``text`` by ``mask``.

    Values shorter than four characters are left alone: hiding them would
    mangle the message without protecting anything.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, mask)
    return text


class Secret:
    """A credential that never shows itself: ``repr`` and ``str`` give the mask.

    Args:
        value: The credential (any object, e.g. a string or a callable).
    """

    __slots__ = ("_value",)

    def __init__(self, value: object) -> None:
        self._value = value

    def get(self) -> object:
        """Return the credential itself, to hand to the library that needs it."""
        return self._value

    def __repr__(self) -> str:
        return repr(REDACTED)

    __str__ = __repr__


def _percent_pattern(raw: bytes) -> bytes:
    """A regex matching ``raw`` with any of its bytes percent-encoded (either hex case)."""
    import re

    parts = []
    for byte in raw:
        code = b"%" + b"".join(
            b"[%c%c]" % (digit, digit ^ 0x20) if digit > 0x39 else bytes([digit])
            for digit in b"%02X" % byte
        )
        literal = re.escape(bytes([byte]))
        spaced = b"|\\+" if byte == 0x20 else b""  # a space in a form-encoded query
        parts.append(b"(?:" + literal + spaced + b"|" + code + b")")
    return b"".join(parts)


def scrub_bytes(data: bytes, secrets: Iterable[str], *, mask: str = REDACTED) -> bytes:
    """Replace every secret of ``secrets`` found in the bytes ``data`` by ``mask``.

    For a body that is not text: each secret is looked for as UTF-8 (and
    Latin-1) bytes, with any of its bytes percent-encoded, and in base64.
    Values shorter than four characters are left alone, as in :func:`scrub`.
    """
    import base64
    import re

    forms: set[bytes] = set()
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < _MIN_SECRET:
            continue
        for encoding in ("utf-8", "latin-1"):
            try:
                raw = secret.encode(encoding)
            except UnicodeEncodeError:
                continue
            forms.add(_percent_pattern(raw))
            for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
                forms.add(re.escape(encoded.rstrip(b"=")) + b"=*")
    if not forms or not data:
        return data
    ordered = list(forms)
    ordered.sort(key=len, reverse=True)  # the longest form wins where two overlap
    pattern = re.compile(b"|".join(ordered))
    return pattern.sub(mask.encode("utf-8"), data)
