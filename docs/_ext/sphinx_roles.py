"""A Griffe extension for the API reference: render reST roles as Markdown.

The docstrings are Google style, with Sphinx cross-reference roles
(``:class:`Pynector```, ``:meth:`~pynector.Pynector.stream```) and ``::``
before literal blocks, which read well in source and in ``help()``. Markdown
would show the roles verbatim; this turns each role into inline code (the
last dotted part when the target starts with ``~``) and ``text::`` into
``text:``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|exc|data|mod|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"(?<=\S)::$", re.M)


def _role(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def markdown(text: str) -> str:
    """Return ``text`` with reST roles and ``::`` markers in Markdown form."""
    return _LITERAL.sub(":", _ROLE.sub(_role, text))


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring once the package is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        # The top-level package is not passed to on_object.
        self.on_object(obj=pkg)
