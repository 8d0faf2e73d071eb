"""Turning HTTP failures into the pynector error hierarchy.

Two kinds of failure reach the caller:

* a reply with a status outside 2xx: a :class:`~pynector.errors.HTTPStatusError`
  subclass chosen by :func:`~pynector.errors.status_error_class`, carrying the
  :class:`~pynector_http.Response` and the server's ``Retry-After``;
* an engine exception: the engine (httpx2 or aiohttp) says what kind of
  failure it was (``CONNECT``, ``READ_TIMEOUT``, ``BROKEN``, ...) and
  :func:`failure` builds the error, so both engines raise the same classes with
  the same messages and flags; the original is kept as ``__cause__``. The
  transport maps them in one place, a context manager entered around every
  call into the engine (sending, following redirects, reading a body, the next
  chunk of a stream).

Every text taken from an engine or a server (an exception's message, the
reason phrase, a body excerpt) is cleaned before it is shown
(:func:`clean_text`): the request's secrets are scrubbed (also percent-encoded
or in base64), and header lines that an engine quotes from a malformed reply
(``b'Set-Cookie: ...'``) are cut to their name.

Whether an error is ``retryable`` follows one rule. An error that happened
before anything reached the server (connection refused, connect or pool
timeout, a proxy that refused the tunnel) is always safe to retry, and so are
429 and 408 replies (the server says it did not act on the request). Any other
failure is retryable only when the request may be repeated: its method is
idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), it carries an
``Idempotency-Key`` header, or the caller passed ``idempotent=True``. A
reply's ``x-should-retry: true`` or ``false`` (the OpenAI and Anthropic APIs
send it) overrides the status rule: the server says whether it acted.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import Iterable

from pynector import errors
from pynector.concurrency import retry_after_from_headers, should_retry_from_headers
from pynector.redact import REDACTED, is_secret_name, redact_url, scrub

from ._response import Response

__all__ = [
    "BROKEN",
    "CONNECT",
    "CONNECT_TIMEOUT",
    "DECODE",
    "INVALID_URL",
    "LOCAL_PROTOCOL",
    "OTHER",
    "POOL_TIMEOUT",
    "PROTOCOL",
    "PROXY",
    "READ_TIMEOUT",
    "UNSUPPORTED",
    "WRITE_TIMEOUT",
    "clean_text",
    "failure",
    "hide_in_chain",
    "status_error",
]

_BODY_SNIPPET = 200
_DETAIL_LIMIT = 300
_REASON_LIMIT = 100
# A bytes literal an engine quotes from the wire: b'...', b"...", bytearray(b'...').
_QUOTED_BYTES = re.compile(r"""(?:bytearray\()?(?<![\w'"])b(['"])((?:\\.|(?!\1).)*)\1\)?""")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?=[ \t]*:|[ \t])")
# "Set-Cookie: value" written out in a message, outside any quotes.
_HEADER_LINE = re.compile(r"([!#$%&*+.^_`|~0-9A-Za-z-]+)([ \t]*:[ \t]*)([^\s'\"]+)")
_QUOTED_KEEP = 40
_PROXY_STATUS = re.compile(r"(\d{3})\b")
_TEXTUAL = ("json", "text", "xml", "problem")
_NOT_REPLAYABLE_HINT = (
    "; it was not marked retryable because {method} is not idempotent and the server may "
    "have acted on it: send an Idempotency-Key header or pass idempotent=True to allow retries"
)
_STATUS_HINTS = {
    401: "check the credentials (Authorization / API key header) sent to this origin",
    403: "the credentials are valid but not allowed to do this",
    404: "check the path and base_url",
    405: "check the request method",
    429: "rate limited by the server",
}


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _quoted(match: re.Match[str]) -> str:
    """A bytes literal from the wire, cut so that no header value is quoted word for word."""
    body = match.group(2)
    if body.startswith("HTTP/"):  # a status line: its reason is scrubbed like the rest
        return repr(body[:_QUOTED_KEEP] + ("..." if len(body) > _QUOTED_KEEP else ""))
    name = _HEADER_NAME.match(body)
    if name is None:
        return f"[{len(body)} bytes not shown]"
    if is_secret_name(name.group()):
        return f"'{name.group()}: {REDACTED}'"
    value = body[name.end() :].lstrip(" \t:")
    if len(value) > _QUOTED_KEEP:
        value = value[:_QUOTED_KEEP] + "..."
    return repr(f"{name.group()}: {value}")


def _header_line(match: re.Match[str]) -> str:
    if is_secret_name(match.group(1)):
        return f"{match.group(1)}{match.group(2)}{REDACTED}"
    return match.group()


def clean_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` from an engine or a server, fit to show.

    Header lines quoted from the wire keep their name (a secret one not even
    its value), ``Name: value`` pairs of secret headers lose the value, and
    ``secrets`` are scrubbed (also percent-encoded or in base64).
    """
    if "b'" in text or 'b"' in text:
        text = _QUOTED_BYTES.sub(_quoted, text)
    if ":" in text:
        text = _HEADER_LINE.sub(_header_line, text)
    return scrub(text, secrets)


def hide_in_chain(exc: BaseException, secrets: Iterable[str]) -> None:
    """Clean the text of ``exc`` and of every exception it chains (see :func:`clean_text`).

    The engine's exception becomes the ``__cause__`` of the pynector error, so
    ``traceback.format_exception`` (and ``logger.exception``) print it too.
    """
    secrets = list(secrets)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(
            clean_text(arg, secrets) if isinstance(arg, str) else arg for arg in current.args
        )
        message = getattr(current, "message", None)
        if isinstance(message, str):
            with contextlib.suppress(AttributeError):  # a read-only property
                current.message = clean_text(message, secrets)  # type: ignore[attr-defined]
        current = current.__cause__ or current.__context__


def _detail(exc: BaseException, secrets: Iterable[str]) -> str:
    # aiohttp's response errors keep the bare reason in .message; str() adds the URL.
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message else str(exc)
    text = clean_text(" ".join(text.split()) or type(exc).__name__, secrets)
    if len(text) > _DETAIL_LIMIT:
        text = text[:_DETAIL_LIMIT] + "..."
    return text


# What went wrong, as each engine classifies its own exceptions.
CONNECT = "connect"
"""No connection could be made (refused, DNS, TLS, proxy unreachable)."""
CONNECT_TIMEOUT = "connect_timeout"
"""Connecting took longer than the ``connect`` timeout."""
POOL_TIMEOUT = "pool_timeout"
"""No pooled connection became free within the ``pool`` timeout."""
READ_TIMEOUT = "read_timeout"
"""The reply (head or body) stalled longer than the ``read`` timeout."""
WRITE_TIMEOUT = "write_timeout"
"""Sending the request stalled longer than the ``write`` timeout."""
PROXY = "proxy"
"""The proxy refused or failed the CONNECT tunnel (its status, if any, on the exception)."""
BROKEN = "broken"
"""The connection broke after the request was sent (reset, closed early, body cut short)."""
PROTOCOL = "protocol"
"""The reply is not valid HTTP (status line, oversized headers)."""
LOCAL_PROTOCOL = "local_protocol"
"""The request could not be written as valid HTTP."""
DECODE = "decode"
"""The body could not be decoded from its Content-Encoding."""
UNSUPPORTED = "unsupported"
"""The URL's scheme is not http or https."""
INVALID_URL = "invalid_url"
"""The URL is malformed."""
OTHER = "other"
"""Anything else the engine raised."""


def _proxy_status(exc: BaseException, detail: str) -> int:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    # httpx2 says "407 Proxy Authentication Required": the proxy's answer to CONNECT.
    match = _PROXY_STATUS.match(detail)
    return int(match.group(1)) if match else 0


def failure(
    kind: str,
    exc: BaseException,
    *,
    method: str,
    url: str,
    replayable: bool,
    secrets: Iterable[str] = (),
) -> errors.PynectorError:
    """Build the pynector error for an engine failure of the given ``kind``.

    Args:
        kind: What happened (``CONNECT``, ``READ_TIMEOUT``, ...), as the engine
            classified its exception.
        exc: The engine's exception (its text is shown, with secrets removed).
        method: The request's method.
        url: The request's URL (redacted here before it is shown).
        replayable: Whether the request may be repeated (idempotent method,
            ``Idempotency-Key`` header or ``idempotent=True``).
        secrets: Secret values to keep out of the message.

    Returns:
        The pynector error to raise ``from exc``.
    """
    where = f"{method} {redact_url(url)}"
    detail = _detail(exc, secrets)
    hint = "" if replayable else _NOT_REPLAYABLE_HINT.format(method=method)
    if kind == CONNECT_TIMEOUT:
        return errors.TimeoutError(
            f"{where}: connecting timed out ({detail}); the server did not accept the "
            "connection in time. Check the address, or raise the transport's timeout"
        )
    if kind == POOL_TIMEOUT:
        return errors.TimeoutError(
            f"{where}: no connection became free in the pool in time; raise "
            "max_connections or lower the number of requests in flight"
        )
    if kind in (READ_TIMEOUT, WRITE_TIMEOUT):
        phase = "sending the request" if kind == WRITE_TIMEOUT else "the reply"
        error = errors.TimeoutError(f"{where}: timed out waiting for {phase} ({detail}){hint}")
        error.retryable = replayable
        return error
    if kind == CONNECT:
        tls = _tls_failure(exc)
        if tls is not None:
            shown = clean_text(str(tls), secrets)
            return errors.ConnectionError(
                f"{where}: the TLS handshake failed ({shown}). If the server "
                "uses a private CA, pass verify=ssl.create_default_context(cafile='ca.pem')",
                retryable=False,
            )
        return errors.ConnectionError(
            f"{where}: could not connect ({detail}); check that the server is up and "
            "that base_url / url points at it"
        )
    if kind == PROXY:
        code = _proxy_status(exc, detail)
        return errors.ConnectionError(
            f"{where}: the proxy failed or refused the request ({detail}); check proxies=..."
            + (" and the credentials in the proxy URL" if code == 407 else ""),
            retryable=code == 0 or code in (408, 429) or code >= 500,
        )
    if kind == BROKEN:
        return errors.ConnectionError(
            f"{where}: the connection broke ({detail}){hint}", retryable=replayable
        )
    if kind == PROTOCOL:
        return errors.ProtocolError(f"{where}: the server sent an invalid HTTP reply ({detail})")
    if kind == UNSUPPORTED:
        return errors.ConfigurationError(
            f"{where}: only http:// and https:// URLs are supported ({detail})"
        )
    if kind == LOCAL_PROTOCOL:
        return errors.ProtocolError(f"{where}: the request could not be sent ({detail})")
    if kind == DECODE:
        return errors.ProtocolError(f"{where}: the response body could not be decoded ({detail})")
    if kind == INVALID_URL:
        return errors.ConfigurationError(f"{where}: invalid URL ({detail})")
    return errors.TransportError(f"{where}: {type(exc).__name__}: {detail}")


def _snippet(response: Response, secrets: Iterable[str]) -> str:
    content_type = response.headers.get("content-type", "")
    if not response.content or not any(kind in content_type for kind in _TEXTUAL):
        return ""
    text = response.content[: _BODY_SNIPPET * 4].decode(response.encoding, errors="replace")
    text = scrub(" ".join(text.split()), secrets)
    if len(text) > _BODY_SNIPPET:
        text = text[:_BODY_SNIPPET] + "..."
    return f": {text}"


def _reason(response: Response, secrets: Iterable[str]) -> str:
    """The server's reason phrase, scrubbed of the request's secrets and cut short."""
    reason = scrub(" ".join(response.reason_phrase.split()), secrets)
    if len(reason) > _REASON_LIMIT:
        reason = reason[:_REASON_LIMIT] + "..."
    return reason


def status_error(
    response: Response, *, method: str, replayable: bool, secrets: Iterable[str] = ()
) -> errors.HTTPStatusError:
    """Build the error for a response whose status is not 2xx.

    Args:
        response: The complete response (its body already read).
        method: The request's method.
        replayable: Whether the request may be repeated.
        secrets: Secret values to keep out of the message.

    Returns:
        The :class:`~pynector.errors.HTTPStatusError` subclass for the status,
        with ``status_code``, ``response``, ``retryable`` and ``retry_after``.
    """
    code = response.status_code
    cls = errors.status_error_class(code)
    # The server's own word wins over the status rule; a spent one-shot body
    # is still never resent (the transport marks that error afterwards).
    verdict = should_retry_from_headers(response.headers) if code >= 400 else None
    retryable = (code in (408, 429) or (code >= 500 and replayable)) if verdict is None else verdict
    retry_after = retry_after_from_headers(response.headers)
    if 300 <= code < 400:
        location = response.headers.get("location")
        hint = (
            f"; the server redirected to {redact_url(location)}: pass follow_redirects=True "
            "to follow redirects"
            if location
            else ""
        )
    else:
        hint = f" ({_STATUS_HINTS[code]})" if code in _STATUS_HINTS else ""
        if verdict is False:
            hint += "; the server said not to retry it (x-should-retry: false)"
        elif code >= 500 and not retryable:
            hint += _NOT_REPLAYABLE_HINT.format(method=method)
    if retry_after is not None:
        hint += f"; Retry-After: {retry_after:g} s"
    secrets = list(secrets)
    message = (
        f"{method} {redact_url(response.url)} -> {code} {_reason(response, secrets)}{hint}"
        f"{_snippet(response, secrets)}"
    )
    return cls(
        message,
        status_code=code,
        response=response,
        retryable=retryable,
        retry_after=retry_after,
    )
