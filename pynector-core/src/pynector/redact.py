"""Keeping secrets out of reprs, log lines, spans and error messages.

One set of rules for every part of pynector and for third-party transports and
plugins: which header names and query parameters carry credentials (one
predicate, :func:`is_secret_name`, for both), how a URL is shown, and how known
secret values are scrubbed from free text.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, AnyStr
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SECRET_QUERY_PARAMS",
    "SENSITIVE_HEADERS",
    "Scrubber",
    "Secret",
    "is_secret_header",
    "is_secret_name",
    "redact_url",
    "scrub",
    "scrub_bytes",
    "secret_values",
    "url_secrets",
    "value_secrets",
]

REDACTED = "[redacted]"
"""What a hidden value is shown as."""

SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)
"""Lower-case names of the usual credential headers (see :func:`is_secret_header`)."""

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
"""Query parameter names always hidden (compared lower-cased), besides what
:func:`is_secret_name` flags."""

_MIN_SECRET = 4  # shorter values would mangle messages and are not worth hiding


# The name rule, applied to each word of a name once it is split at "-", "_",
# ".", spaces and camelCase humps ("accessToken" -> "access", "token").
# A word *containing* one of these is secret; "auth" but not "author"/"authority",
# "token" but not "tokens"/"tokenizer" (counts and tools, not credentials).
_SECRET_WORD = re.compile(
    r"secret|passw(?:or)?d|passphrase|credential|signature|session|cookie|jwt|bearer"
    r"|auth(?!or(?!i[sz]))|token(?!s$|i[sz])"
)
# A word *ending* in one of these keys is secret ("apikey", "x-apikey", "privatekey").
_SECRET_KEY_WORD = re.compile(
    r"(?:api|access|private|secret|master|subscription|client|signing|encryption|account"
    r"|app|auth|session|license|developer|consumer|sas|shared|pass)keys?$"
)
# Whole words that are secret on their own ("x-api-key", "sig", "pwd").
_SECRET_WORDS = frozenset({"key", "sig", "pass", "pwd"})
# ... except a "key" that names no credential.
_PUBLIC_KEYS = frozenset({"idempotency", "public"})
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^0-9a-z]+")


@functools.lru_cache(maxsize=1024)
def is_secret_name(name: str) -> bool:
    """Whether a header or query parameter of this name may carry a credential.

    The one rule behind every redaction in pynector (headers, query strings,
    logs, spans, the CLI) and behind the headers dropped on a redirect to
    another origin. The name is split into words at ``-``, ``_``, ``.`` and
    camelCase humps, lower-cased, and it is secret when:

    * it is one of :data:`SENSITIVE_HEADERS` or :data:`SECRET_QUERY_PARAMS`;
    * a word contains ``auth`` (not ``author``/``authority``), ``token`` (not
      ``tokens``/``tokenizer``), ``secret``, ``password``/``passwd``,
      ``passphrase``, ``credential``, ``signature``, ``session``, ``cookie``,
      ``jwt`` or ``bearer``;
    * a word is ``key`` (not in ``Idempotency-Key`` or ``public_key``),
      ``sig``, ``pass`` or ``pwd``, or ends in ``apikey``, ``accesskey``,
      ``privatekey``, ``subscriptionkey``, ... .

    So ``X-Auth-Token``, ``Private-Token``, ``X-Session-Id``, ``accessToken``,
    ``client-secret``, ``secret_key``, ``api_token``, ``sessionid``, ``jwt``
    and ``Ocp-Apim-Subscription-Key`` are secret; ``keyword``, ``monkey``,
    ``author``, ``max_tokens``, ``Idempotency-Key`` and ``api-version`` are not.
    """
    lowered = name.lower()
    if lowered in SENSITIVE_HEADERS or lowered in SECRET_QUERY_PARAMS:
        return True
    words = [word for word in _SEPARATORS.split(_HUMP.sub("_", name).lower()) if word]
    for index, word in enumerate(words):
        if _SECRET_WORD.search(word) or _SECRET_KEY_WORD.search(word):
            return True
        if word in _SECRET_WORDS and not (
            word == "key" and index and words[index - 1] in _PUBLIC_KEYS
        ):
            return True
    return False


def is_secret_header(name: str) -> bool:
    """Whether a header of this name may carry a credential: :func:`is_secret_name`."""
    return is_secret_name(name)


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
            if sep and is_secret_name(unquote_plus(name)):
                field = f"{name}={mask}"
            fields.append(field)
        query = "&".join(fields)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _basic_credentials(token: str) -> list[str]:
    """``user:password`` and ``password`` from a Basic credential's base64 token."""
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return []
    user, colon, password = decoded.partition(":")
    return [decoded, password] if colon and password else [decoded] if user else []


def secret_values(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The secret values among ``(name, value)`` header pairs.

    Both whole values and their credential part (``"Bearer abc"`` gives
    ``"Bearer abc"`` and ``"abc"``); a Basic credential also gives the
    ``user:password`` it encodes and the password. Ready for :func:`scrub`.
    """
    found: set[str] = set()
    for name, value in headers:
        if value and is_secret_name(name):
            found.add(value)
            scheme, _, credential = value.partition(" ")
            credential = credential.strip()
            if credential:
                found.add(credential)
                if scheme.lower() == "basic":
                    found.update(_basic_credentials(credential))
            elif scheme != value:
                found.add(scheme)
    return found


def url_secrets(url: str) -> set[str]:
    """The credentials in a URL: its user info and the values of secret query parameters.

    The user info (``user:password@``, or a token given as the user) as written,
    decoded and in base64 (how it travels as Basic auth), and the password alone;
    each secret query value (``?api_key=...``, see :func:`is_secret_name`) as
    written and decoded. A string that is not a URL but a query (``a=1&token=x``)
    is read as one. Ready for :func:`scrub`.
    """
    found: set[str] = set()
    if "?" not in url and "@" not in url and "=" not in url:
        return found
    if "=" in url and "?" not in url and "/" not in url:
        url = "?" + url  # a bare query string, such as a ``params`` value
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    userinfo, at, _host = parts.netloc.rpartition("@")
    if at and userinfo:
        plain = unquote(userinfo)
        found.update((userinfo, plain, base64.b64encode(plain.encode()).decode()))
        _user, colon, password = userinfo.partition(":")
        if colon and password:
            found.update((password, unquote(password)))
    for field in parts.query.split("&"):
        name, sep, value = field.partition("=")
        if sep and value and is_secret_name(unquote_plus(name)):
            found.update((value, unquote_plus(value)))
    return found


def value_secrets(value: Any, name: str = "") -> set[str]:
    """The secrets inside a (JSON-like) value, such as a request or a transport option.

    A string under a secret name (:func:`is_secret_name`: ``api_key``,
    ``Authorization``, ...) is a secret, with its credential parts as in
    :func:`secret_values`; any other string is read for URL credentials
    (:func:`url_secrets`). Mappings and lists (including ``(name, value)`` pairs)
    are searched to any depth. Ready for :func:`scrub`.

    Args:
        value: What to search.
        name: The key ``value`` is found under, if any.
    """
    found: set[str] = set()
    _collect(value, name, found, 0)
    return found


def _is_pair(value: list[Any] | tuple[Any, ...]) -> bool:
    return len(value) == 2 and isinstance(value[0], str) and not isinstance(value[1], Mapping)


def _collect(value: Any, name: str, found: set[str], depth: int) -> None:
    if isinstance(value, str):
        if name and is_secret_name(name):
            found.update(secret_values([(name, value)]))
        else:
            found.update(url_secrets(value))
        return
    if depth > 64:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, str(key), found, depth + 1)
    elif isinstance(value, list | tuple):
        if not (name and is_secret_name(name)) and _is_pair(value):
            _collect(value[1], value[0], found, depth + 1)  # a (name, value) pair
            return
        for item in value:
            _collect(item, name, found, depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and is_secret_name(name):
        found.add(str(value))  # a numeric key or PIN under a secret name


def _text_pattern(secret: str) -> list[str]:
    """Regex alternatives that find ``secret`` in text, however it was encoded.

    As it is, with any of its characters percent-encoded in either hex case (a
    query value as a URL carries it: ``a/b c`` also as ``a%2Fb+c``), escaped
    inside a JSON string, and in base64 with or without padding (how a
    ``user:password`` pair travels in a Basic ``Authorization`` header).
    """
    pieces = []
    for char in secret:
        codes = "".join(
            "%" + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")
            for byte in char.encode("utf-8", "surrogatepass")
        )
        spaced = r"|\+" if char == " " else ""  # a space in a form-encoded query
        pieces.append(f"(?:{re.escape(char)}{spaced}|{codes})")
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]} - {secret}
    raw = secret.encode("utf-8", "surrogatepass")
    encoded = (base64.b64encode(raw), base64.urlsafe_b64encode(raw))
    return [
        "".join(pieces),
        *(re.escape(form) for form in escaped),
        *(re.escape(form.decode("ascii").rstrip("=")) + "=*" for form in encoded),
    ]


def _bytes_pattern(raw: bytes) -> list[bytes]:
    """Regex alternatives that find the bytes ``raw``: any byte percent-encoded, or base64."""
    parts = []
    for byte in raw:
        code = b"%" + b"".join(
            b"[%c%c]" % (digit, digit ^ 0x20) if digit > 0x39 else bytes([digit])
            for digit in b"%02X" % byte
        )
        spaced = b"|\\+" if byte == 0x20 else b""
        parts.append(b"(?:" + re.escape(bytes([byte])) + spaced + b"|" + code + b")")
    encoded = (base64.b64encode(raw), base64.urlsafe_b64encode(raw))
    return [b"".join(parts), *(re.escape(form.rstrip(b"=")) + b"=*" for form in encoded)]


def _longest_first(forms: Iterable[AnyStr]) -> list[AnyStr]:
    # Where two forms overlap the longer one wins, so no part of a secret is left.
    return sorted(set(forms), key=len, reverse=True)


class Scrubber:
    """Known secret values, and how to keep them out of any text or bytes.

    Each secret is found as it is, with any character percent-encoded, escaped
    inside a JSON string, and in base64 (see :func:`scrub`). The patterns are
    compiled once, on first use.

    Args:
        secrets: The secret strings; values shorter than four characters are
            ignored (hiding them would mangle text without protecting anything).
    """

    __slots__ = ("_bytes", "_text", "values")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        kept = {value: None for value in secrets if isinstance(value, str)}
        self.values: tuple[str, ...] = tuple(v for v in kept if len(v) >= _MIN_SECRET)
        """The secrets looked for, in the order given."""
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None

    def __bool__(self) -> bool:
        return bool(self.values)

    def _text_pattern(self) -> re.Pattern[str]:
        if self._text is None:
            forms = (form for value in self.values for form in _text_pattern(value))
            self._text = re.compile("|".join(_longest_first(forms)))
        return self._text

    def scrub(self, text: str, *, mask: str = REDACTED) -> str:
        """Return ``text`` with every secret, in any of its forms, replaced by ``mask``."""
        if not self.values or not text:
            return text
        return self._text_pattern().sub(lambda _: mask, text)

    def found_in(self, text: str) -> bool:
        """Whether any secret occurs in ``text`` in any of its forms."""
        return bool(self.values) and self._text_pattern().search(text) is not None

    def scrub_bytes(self, data: bytes, *, mask: str = REDACTED) -> bytes:
        """Return the bytes ``data`` (a body that is not text) with every secret replaced.

        Each secret is looked for as UTF-8 and Latin-1 bytes, with any byte
        percent-encoded, and in base64.
        """
        if not self.values or not data:
            return data
        if self._bytes is None:
            forms: list[bytes] = []
            for value in self.values:
                for encoding in ("utf-8", "latin-1"):
                    try:
                        forms += _bytes_pattern(value.encode(encoding))
                    except UnicodeEncodeError:
                        continue
            self._bytes = re.compile(b"|".join(_longest_first(forms)))
        masked = mask.encode("utf-8")
        return self._bytes.sub(lambda _: masked, data)


@functools.lru_cache(maxsize=64)
def _scrubber(secrets: frozenset[str]) -> Scrubber:
    return Scrubber(secrets)


def scrub(text: str, secrets: Iterable[str], *, mask: str = REDACTED) -> str:
    """Replace every secret of ``secrets`` found in ``text`` by ``mask``.

    Each secret is also caught with any character percent-encoded
    (``p%40ss`` for ``p@ss``), escaped inside a JSON string, and in base64 (how
    a ``user:password`` pair travels in a Basic ``Authorization`` header).
    Values shorter than four characters are left alone: hiding them would
    mangle the message without protecting anything.
    """
    return _scrubber(frozenset(secrets)).scrub(text, mask=mask)


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


def scrub_bytes(data: bytes, secrets: Iterable[str], *, mask: str = REDACTED) -> bytes:
    """Replace every secret of ``secrets`` found in the bytes ``data`` by ``mask``.

    For a body that is not text: each secret is looked for as UTF-8 (and
    Latin-1) bytes, with any of its bytes percent-encoded, and in base64.
    Values shorter than four characters are left alone, as in :func:`scrub`.
    """
    return _scrubber(frozenset(secrets)).scrub_bytes(data, mask=mask)
