"""What the HTTP transport reports on a call, in the OpenTelemetry HTTP client conventions.

The stable HTTP client conventions name the span after the method (``"HTTP"``
for a method outside the standard set) and give it ``http.request.method``
(``_OTHER`` plus ``http.request.method_original`` for such a method),
``url.full``, ``server.address``, ``server.port``, ``http.request.resend_count``
(from the second attempt on), ``http.response.status_code`` and
``network.protocol.version``. ``url.full`` is the URL of the hop that was sent
last, redacted by :func:`pynector.redact.redact_url` with the conventions'
``REDACTED`` mask; a request whose URL carried credentials (which the transport
sends as a Basic ``Authorization`` header) shows ``REDACTED:REDACTED@``.

Plugins read these from the call (``call.span_name``, ``call.attributes``),
so a tracing plugin needs no knowledge of HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pynector.redact import redact_url

from ._headers import Headers

if TYPE_CHECKING:
    from pynector.call import Call

    from ._urls import Origin

__all__ = ["KNOWN_METHODS", "REDACTED", "origin_key", "report_reply", "report_request", "url_full"]

KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
"""The methods recorded as themselves; any other is ``_OTHER``."""

REDACTED = "REDACTED"
"""The mask the OpenTelemetry conventions use in ``url.full``."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_key(origin: Origin) -> str:
    """``scheme://host[:port]`` (the port only when it is not the scheme's default)."""
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    if _DEFAULT_PORTS.get(origin.scheme) == origin.port:
        return f"{origin.scheme}://{host}"
    return f"{origin.scheme}://{host}:{origin.port}"


def url_full(url: str, userinfo: bool = False) -> str:
    """``url.full`` of a URL as sent: secret query values masked, credentials marked.

    Args:
        url: The absolute URL sent (without credentials: they went in a header).
        userinfo: Whether the caller's URL had credentials (``user:pw@``).
    """
    shown = redact_url(url, mask=REDACTED)
    if userinfo:
        scheme, sep, rest = shown.partition("://")
        shown = f"{scheme}{sep}{REDACTED}:{REDACTED}@{rest}"
    return shown


def report_request(
    call: Call[Any],
    method: str,
    url: str,
    origin: Origin,
    headers: Sequence[tuple[str, str]],
    userinfo: bool = False,
) -> None:
    """Report on ``call`` the hop about to be sent: URL, server, headers, span name, attributes.

    The headers are those the transport sends; once a reply arrives,
    :func:`report_reply` replaces them with what the engine sent (its own included).
    """
    call.url = url
    call.request_headers = Headers.from_loader(headers.__iter__)
    call.server_address = origin.host
    call.server_port = origin.port
    attributes = call.attributes
    if method in KNOWN_METHODS:
        call.span_name = method
        attributes["http.request.method"] = method
    else:
        call.span_name = "HTTP"
        attributes["http.request.method"] = "_OTHER"
        attributes["http.request.method_original"] = method
    attributes["url.full"] = url_full(url, userinfo)
    attributes["server.address"] = origin.host
    attributes["server.port"] = origin.port
    if call.attempt > 1:
        attributes["http.request.resend_count"] = call.attempt - 1


def report_reply(
    call: Call[Any],
    status: int,
    http_version: str,
    sent_headers: Headers,
    headers: Headers,
) -> None:
    """Report on ``call`` the reply's status, protocol version and both sets of headers."""
    call.status = status
    call.request_headers = sent_headers
    call.response_headers = headers
    attributes = call.attributes
    attributes["http.response.status_code"] = status
    if http_version:
        attributes["network.protocol.version"] = http_version.removeprefix("HTTP/")
