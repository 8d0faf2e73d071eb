"""Recording HTTP headers on spans: only the names the user's allow-lists give.

The span name and the HTTP attributes (``http.request.method``, ``url.full``,
``server.*``, ``http.response.status_code``, ...) are the transport's: it
reports them on the call (``call.span_name``, ``call.attributes``), so the
plugin knows no transport. What stays here is the plugin's own setting: which
request and response headers (``call.request_headers`` /
``call.response_headers``) become ``http.request.header.<name>`` and
``http.response.header.<name>``. Names that can carry a credential never get
on an allow-list (:func:`pynector_otel._redact.allowed_headers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["header_attributes"]

Attributes = dict[str, Any]


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
