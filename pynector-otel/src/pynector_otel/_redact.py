"""Keeping secrets out of spans and log lines.

The rules are the core's (:mod:`pynector.redact`). URLs reach spans already
redacted by their transport (``url.full`` in ``call.attributes``); what the
plugin decides is which headers it records: a header name that can carry a
secret is never recorded, whatever the allow-list says.
"""

from __future__ import annotations

from collections.abc import Iterable

from pynector import redact

__all__ = ["allowed_headers"]


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
