"""HTTP semantic conventions for the ``http`` transport's spans.

Names follow the stable OpenTelemetry HTTP client conventions: the span is
named after the method, ``http.request.method``, ``url.full`` (redacted),
``server.address``, ``server.port`` and ``http.request.resend_count`` are set
when the attempt starts; ``http.response.status_code``,
``network.protocol.version`` and ``error.type`` when it ends. Everything is
read from the request dict, the transport's ``base_url`` and the reply by
duck typing, so this module imports nothing from ``pynector_http``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from ._redact import redact_url

__all__ = ["KNOWN_METHODS", "header_attributes", "reply_attributes", "request_attributes"]

KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

Attributes = dict[str, Any]


def _join(base: str, target: str) -> str:
    """``base_url`` + ``path`` the way httpx merges them."""
    if not target:
        return base
    return base.rstrip("/") + "/" + target.lstrip("/")


def _with_params(url: str, params: object) -> str:
    if not params:
        return url
    try:
        query = urlencode(params, doseq=True)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return url
    return f"{url}&{query}" if "?" in url else f"{url}?{query}"


def url_attributes(url: str) -> Attributes:
    """``url.full`` (redacted), ``server.address`` and ``server.port`` of an absolute URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return {}
    attributes: Attributes = {"url.full": redact_url(url)}
    if parts.hostname:
        attributes["server.address"] = parts.hostname
        port = port or _DEFAULT_PORTS.get(parts.scheme)
        if port:
            attributes["server.port"] = port
    return attributes


def request_url(data: Mapping[str, Any], base_url: object) -> str | None:
    """The absolute URL a request dict targets, or ``None`` when it cannot be known."""
    url = data.get("url")
    path = data.get("path")
    if isinstance(url, str) and "://" in url:
        target: str | None = url
    elif base_url:
        relative = path if isinstance(path, str) else url if isinstance(url, str) else ""
        target = _join(str(base_url), relative)
    else:
        target = None
    if target is None:
        return None
    return _with_params(target, data.get("params"))


def method_of(data: Mapping[str, Any]) -> str:
    method = data.get("method") or "GET"
    return method.upper() if isinstance(method, str) else "GET"


def request_attributes(
    data: object, transport: object, attempt: int, request_headers: frozenset[str]
) -> tuple[str, Attributes]:
    """The span name and the attributes known before an HTTP attempt starts."""
    request = data if isinstance(data, Mapping) else {}
    method = method_of(request)
    attributes: Attributes = {}
    if method in KNOWN_METHODS:
        attributes["http.request.method"] = method
        name = method
    else:
        attributes["http.request.method"] = "_OTHER"
        attributes["http.request.method_original"] = method
        name = "HTTP"
    url = request_url(request, getattr(transport, "base_url", None))
    if url is not None:
        attributes.update(url_attributes(url))
    if attempt > 1:
        attributes["http.request.resend_count"] = attempt - 1
    if request_headers:
        headers = request.get("headers")
        if isinstance(headers, Mapping):
            attributes.update(header_attributes("request", headers, request_headers))
    return name, attributes


def header_attributes(kind: str, headers: Mapping[str, Any], allowed: frozenset[str]) -> Attributes:
    """``http.<kind>.header.<name>`` for the allow-listed headers present in ``headers``."""
    attributes: Attributes = {}
    get_list = getattr(headers, "get_list", None)
    for name in headers:
        lowered = str(name).lower()
        if lowered not in allowed:
            continue
        if get_list is not None:
            values = [str(value) for value in get_list(name)]
        else:
            value = headers[name]
            values = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        attributes[f"http.{kind}.header.{lowered}"] = values
    return attributes


def reply_attributes(
    reply: object, request_headers: frozenset[str], response_headers: frozenset[str]
) -> Attributes:
    """Attributes read from a reply (or an error's response): status, final URL, headers."""
    attributes: Attributes = {}
    status = getattr(reply, "status_code", None)
    if isinstance(status, int):
        attributes["http.response.status_code"] = status
    url = getattr(reply, "url", None)
    if url:
        attributes.update(url_attributes(str(url)))
    version = getattr(reply, "http_version", None)
    if isinstance(version, str) and version:
        attributes["network.protocol.version"] = version.removeprefix("HTTP/")
    if response_headers:
        headers = getattr(reply, "headers", None)
        if isinstance(headers, Mapping):
            attributes.update(header_attributes("response", headers, response_headers))
    if request_headers:
        sent = getattr(getattr(reply, "request", None), "headers", None)
        if isinstance(sent, Mapping):
            attributes.update(header_attributes("request", sent, request_headers))
    return attributes
