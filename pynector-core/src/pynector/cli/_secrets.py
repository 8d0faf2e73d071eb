"""The credentials given on the command line, kept out of everything the commands show.

Which values are secrets is decided by :mod:`pynector.redact` (one set of rules
for every part of pynector); :class:`Secrets` is its scrubber, grown as the
command learns more secrets and able to scrub JSON values without breaking them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pynector.redact import Scrubber, value_secrets

__all__ = ["Secrets", "request_secrets"]

_MIN_SECRET = 4  # shorter values would mangle unrelated text and are not worth hiding


def request_secrets(data: Any) -> set[str]:
    """The secrets of one request: credential headers, URL credentials, secret parameters.

    See :func:`pynector.redact.value_secrets`.
    """
    return value_secrets(data)


class Secrets(Scrubber):
    """Credentials from the command line, and how to keep them out of any text.

    A :class:`pynector.redact.Scrubber` (each secret found as it is,
    percent-encoded, JSON-escaped and in base64) that grows with ``+`` and
    scrubs JSON values too.

    Args:
        values: The secret strings; values shorter than 4 characters are ignored.
    """

    __slots__ = ()

    def __add__(self, values: Iterable[str]) -> Secrets:
        """These secrets and ``values``."""
        added = [value for value in values if isinstance(value, str) and len(value) >= _MIN_SECRET]
        if not added or all(value in self.values for value in added):
            return self
        return Secrets([*self.values, *added])

    def scrub_object(self, value: Any) -> Any:
        """A copy of a JSON value with the secrets replaced in every string and key.

        Unlike :meth:`scrub` on the serialised text, this can never break the
        JSON (a secret that looks like a number is not replaced inside numbers).
        """
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(str(k)): self.scrub_object(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_object(item) for item in value]
        return value

    def dumps(self, value: Any) -> str:
        """``json.dumps(value)`` (compact, UTF-8 text) with no secret in it."""
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if self.values and self.found_in(text):
            text = json.dumps(self.scrub_object(value), ensure_ascii=False, separators=(",", ":"))
        return text
