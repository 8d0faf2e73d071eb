"""What the HTTP transport reports on a call, in the OpenTelemetry HTTP client conventions.

The stable HTTP client conventions name the span after the method (``"HTTP"``
for a method outside the standard set) and give it ``http.request.method``
(``_OTHER`` plus ``http.request.method_original`` for such a method; the
standard set is RFC 9110's methods and PATCH, or the comma list in
``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` read when a transport is made),
``url.full``, ``url.scheme``, ``server.address``, ``server.port``,
``http.request.resend_count`` (from the second attempt on),
``http.response.status_code``, ``network.protocol.version`` and, when a
plugin takes part in the call, ``user_agent.original`` and
``network.peer.address`` / ``network.peer.port``. ``url.full`` is the URL of the hop that was sent
last, redacted by :func:`pynector.redact.redact_url` with the conventions'
``REDACTED`` mask; a request whose URL carried credentials (which the transport
sends as a Basic ``Authorization`` header) shows ``REDACTED:REDACTED@``.

Plugins read these from the call (``call.span_name``, ``call.attributes``),
so a tracing plugin needs no knowledge of HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pynector.redact import redact_url

from ._headers import Headers

if TYPE_CHECKING:
    from pynector.call import Call

    from ._engine import Reply
    from ._urls import Origin

__all__ = [
    "KNOWN_METHODS",
    "KNOWN_METHODS_ENV",
    "REDACTED",
    "load_known_methods",
    "origin_key",
    "report_outcome",
    "report_reply",
    "report_request",
    "url_full",
]

KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
"""The conventions' default known methods (RFC 9110 and PATCH); any other is ``_OTHER``."""

KNOWN_METHODS_ENV = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"
"""A comma list of case-sensitive methods that replaces :data:`KNOWN_METHODS`."""

_known = KNOWN_METHODS


def load_known_methods() -> frozenset[str]:
    """Read ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` (called when a transport is made).

    Set, it replaces the default list (the conventions ask for a full
    override); unset or empty, the default applies.
    """
    global _known
    value = os.environ.get(KNOWN_METHODS_ENV, "")
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    _known = names or KNOWN_METHODS
    return _known


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
    hop: int = 0,
) -> None:
    """Report on ``call`` a hop that got no reply: URL, server, headers, span name, attributes.

    ``hop``: the redirects followed before it (they count in ``http.request.resend_count``).
    """
    _report_hop(call, method, url, origin, url_full(url, userinfo), hop)
    call.request_headers = sent = Headers.from_loader(headers.__iter__)
    if call.observed:
        agent = sent.get("user-agent")
        if agent is not None:
            call.attributes["user_agent.original"] = agent


def _report_hop(
    call: Call[Any], method: str, url: str, origin: Origin, shown: str, hop: int = 0
) -> None:
    """What every hop reports: the URL, the server, the span name and the request attributes."""
    call.url = url
    call.server_address = host = origin.host
    call.server_port = port = origin.port
    attributes = call.attributes
    if method in _known:
        call.span_name = method
        attributes["http.request.method"] = method
    else:
        call.span_name = "HTTP"
        attributes["http.request.method"] = "_OTHER"
        attributes["http.request.method_original"] = method
    attributes["url.full"] = shown
    attributes["url.scheme"] = origin.scheme
    attributes["server.address"] = host
    attributes["server.port"] = port
    resent = call.attempt - 1 + hop
    if resent:
        attributes["http.request.resend_count"] = resent


def report_outcome(call: Call[Any], url: str, origin: Origin, reply: Reply) -> None:
    """Report on a call no plugin sees what the client reads: URL, server, status, headers.

    The headers are the engine's own case-insensitive mapping: only the
    client's rate-limit hint check reads them.
    """
    call.url = url
    call.server_address = origin.host
    call.server_port = origin.port
    call.status = reply.status_code
    call.response_headers = reply.header_map()


def report_reply(
    call: Call[Any],
    method: str,
    url: str,
    origin: Origin,
    userinfo: bool,
    reply: Reply,
    hop: int = 0,
) -> None:
    """Report on ``call`` the hop that got ``reply``: URL, server, status, headers, attributes."""
    if not call.observed:
        report_outcome(call, url, origin, reply)
        return
    shown = url if not userinfo and "?" not in url and "@" not in url else url_full(url, userinfo)
    _report_hop(call, method, url, origin, shown, hop)
    call.status = status = reply.status_code
    attributes = call.attributes
    attributes["http.response.status_code"] = status
    version = reply.http_version
    if version:
        attributes["network.protocol.version"] = version.removeprefix("HTTP/")
    # What the engine sent (its own headers included) and received; read on first use.
    call.request_headers = sent = reply.sent_headers()
    call.response_headers = reply.headers()
    if call.observed:
        agent = sent.get("user-agent")
        if agent is not None:
            attributes["user_agent.original"] = agent
        peer = reply.peer()
        if peer is not None:
            attributes["network.peer.address"], attributes["network.peer.port"] = peer
