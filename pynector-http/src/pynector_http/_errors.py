"""Turning HTTP failures into the pynector error hierarchy.

Two kinds of failure reach the caller:

* a reply with a status outside 2xx: a :class:`~pynector.errors.HTTPStatusError`
  subclass chosen by :func:`~pynector.errors.status_error_class`, carrying the
  :class:`~pynector_http.Response` and the server's ``Retry-After``;
* an engine exception (httpx2's): translated here, with the original kept as
  ``__cause__``.

Whether an error is ``retryable`` follows one rule. An error that happened
before anything reached the server (connection refused, connect or pool
timeout, a proxy that refused the tunnel) is always safe to retry, and so are
429 and 408 replies (the server says it did not act on the request). Any other
failure is retryable only when the request may be repeated: its method is
idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), it carries an
``Idempotency-Key`` header, or the caller passed ``idempotent=True``.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable

import httpx2

from pynector import errors
from pynector.concurrency import retry_after_from_headers
from pynector.redact import redact_url, scrub

from ._response import Response

__all__ = ["status_error", "translate"]

_BODY_SNIPPET = 200
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


def _detail(exc: BaseException, secrets: Iterable[str]) -> str:
    text = str(exc) or type(exc).__name__
    return scrub(text, secrets)


def translate(
    exc: Exception,
    *,
    method: str,
    url: str,
    replayable: bool,
    secrets: Iterable[str] = (),
) -> errors.PynectorError:
    """Translate an httpx2 exception into the pynector hierarchy.

    Args:
        exc: What httpx2 raised.
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
    if isinstance(exc, httpx2.TimeoutException):
        if isinstance(exc, httpx2.ConnectTimeout):
            return errors.TimeoutError(
                f"{where}: connecting timed out ({detail}); the server did not accept the "
                "connection in time. Check the address, or raise the transport's timeout"
            )
        if isinstance(exc, httpx2.PoolTimeout):
            return errors.TimeoutError(
                f"{where}: no connection became free in the pool in time; raise "
                "max_connections or lower the number of requests in flight"
            )
        phase = "sending the request" if isinstance(exc, httpx2.WriteTimeout) else "the reply"
        error = errors.TimeoutError(f"{where}: timed out waiting for {phase} ({detail}){hint}")
        error.retryable = replayable
        return error
    if isinstance(exc, httpx2.ConnectError):
        tls = _tls_failure(exc)
        if tls is not None:
            return errors.ConnectionError(
                f"{where}: the TLS handshake failed ({scrub(str(tls), secrets)}). If the server "
                "uses a private CA, pass verify=ssl.create_default_context(cafile='ca.pem')",
                retryable=False,
            )
        return errors.ConnectionError(
            f"{where}: could not connect ({detail}); check that the server is up and "
            "that base_url / url points at it"
        )
    if isinstance(exc, httpx2.ProxyError):
        # "407 Proxy Authentication Required": the proxy's answer to CONNECT.
        status = _PROXY_STATUS.match(detail)
        code = int(status.group(1)) if status else 0
        return errors.ConnectionError(
            f"{where}: the proxy failed or refused the request ({detail}); check proxies=..."
            + (" and the credentials in the proxy URL" if code == 407 else ""),
            retryable=code == 0 or code in (408, 429) or code >= 500,
        )
    if isinstance(exc, httpx2.RemoteProtocolError):
        if "disconnect" in detail or "closed connection" in detail:
            return errors.ConnectionError(
                f"{where}: the connection broke ({detail}){hint}", retryable=replayable
            )
        return errors.ProtocolError(f"{where}: the server sent an invalid HTTP reply ({detail})")
    if isinstance(exc, httpx2.NetworkError):
        return errors.ConnectionError(
            f"{where}: the connection broke ({detail}){hint}", retryable=replayable
        )
    if isinstance(exc, httpx2.UnsupportedProtocol):
        return errors.ConfigurationError(
            f"{where}: only http:// and https:// URLs are supported ({detail})"
        )
    if isinstance(exc, httpx2.LocalProtocolError):
        return errors.ProtocolError(f"{where}: the request could not be sent ({detail})")
    if isinstance(exc, httpx2.DecodingError):
        return errors.ProtocolError(f"{where}: the response body could not be decoded ({detail})")
    if isinstance(exc, httpx2.InvalidURL):
        return errors.ConfigurationError(f"{where}: invalid URL ({detail})")
    return errors.TransportError(f"{where}: {type(exc).__name__}: {detail}")


def _snippet(response: Response, secrets: Iterable[str]) -> str:
    content_type = response.headers.get("content-type", "")
    if not response.content or not any(kind in content_type for kind in _TEXTUAL):
        return ""
    text = response.content[: _BODY_SNIPPET * 4].decode(response.encoding, errors="replace")
    text = " ".join(text.split())
    if len(text) > _BODY_SNIPPET:
        text = text[:_BODY_SNIPPET] + "..."
    return f": {scrub(text, secrets)}"


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
    retryable = code in (408, 429) or (code >= 500 and replayable)
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
        if code >= 500 and not replayable:
            hint += _NOT_REPLAYABLE_HINT.format(method=method)
    if retry_after is not None:
        hint += f"; Retry-After: {retry_after:g} s"
    message = (
        f"{method} {redact_url(response.url)} -> {code} {response.reason_phrase}{hint}"
        f"{_snippet(response, secrets)}"
    )
    return cls(
        message,
        status_code=code,
        response=response,
        retryable=retryable,
        retry_after=retry_after,
    )
