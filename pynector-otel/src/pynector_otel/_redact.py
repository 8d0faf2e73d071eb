"""Keeping secrets out of spans and log lines.

The rules are the core's (:mod:`pynector.redact`); URLs follow the
OpenTelemetry rule for ``url.full``: credentials become ``REDACTED:REDACTED@``
and the values of query parameters that usually carry credentials become
``REDACTED``. Header names that can carry a secret are never recorded, whatever
the allow-list says.
"""

from __future__ import annotations

from collections.abc import Iterable

from pynector import redact

__all__ = ["REDACTED", "allowed_headers", "redact_url"]

REDACTED = "REDACTED"
"""The mask the OpenTelemetry semantic conventions use."""


def redact_url(url: str) -> str:
    """Return ``url`` fit for ``url.full``: no credentials, no secret query values."""
    return redact.redact_url(url, mask=REDACTED)


def allowed_headers(names: Iterable[str]) -> tuple[frozenset[str], list[str]]:
    """Split an allow-list into the names that may be recorded and the refused ones.

    Returns:
        The allowed names, lower-cased, and the names refused because they may
        carry a secret.
    """
    allowed: set[str] = set()
    refused: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if redact.is_secret_header(name):
            refused.append(name)
        else:
            allowed.add(name)
    return frozenset(allowed), refused
