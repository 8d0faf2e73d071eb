"""Find the Python code blocks of the Markdown pages and run them, page by page.

The convention the documentation follows (``docs/index.md`` says it too):

* Every fenced block marked ```` ```python ```` in ``README.md`` and ``docs/`` runs
  in the test suite; other languages (``bash``, ``toml``, ``json``) do not.
* The blocks of one page run in order in one namespace, like a session: a block
  may use names an earlier block on the same page defined.
* Top-level ``await`` is allowed. A page whose blocks start their own event loop
  (``anyio.run``, ``asyncio.run``, ``trio.run``) runs once, without a running
  loop; every other page runs on asyncio and on trio.
* ``https://api.example.com`` stands for "your API": it becomes a local
  server (``_server.py``). The OpenAI and Anthropic SDKs talk to a local fake
  of their APIs through ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``, and
  ``http://localhost:8000/v1`` (an OpenAI-compatible server) becomes it too.
* A block that is deliberately not runnable is preceded by
  ``<!-- not-run: reason -->``.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n`]*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")
_OWN_LOOP = re.compile(r"\b(?:anyio|asyncio|trio)\.run\(")


@dataclass(frozen=True)
class Block:
    """One fenced ``python`` block of a page."""

    page: str
    line: int  # the line of the block's first code line, 1-based
    code: str
    not_run: str | None = None

    @property
    def own_loop(self) -> bool:
        """Whether the block starts its own event loop."""
        return bool(_OWN_LOOP.search(self.code))

    def compiled(self, replacements: dict[str, str]) -> Any:
        """The block compiled with top-level ``await``, line numbers as in the page."""
        source = self.code
        for placeholder, value in replacements.items():
            source = source.replace(placeholder, value)
        tree = ast.parse(source, filename=self.page)
        ast.increment_lineno(tree, self.line - 1)
        return compile(tree, self.page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@dataclass
class Page:
    """A Markdown file and its ``python`` blocks."""

    path: Path
    blocks: list[Block] = field(default_factory=list)
    markers: list[tuple[int, str]] = field(default_factory=list)  # not-run markers

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def runnable(self) -> list[Block]:
        return [block for block in self.blocks if block.not_run is None]

    @property
    def own_loop(self) -> bool:
        return any(block.own_loop for block in self.runnable)


def pages() -> list[Path]:
    """README.md and every page under docs/, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def parse(path: Path) -> Page:
    """Collect the fenced blocks of ``path``; ``python`` ones become :class:`Block`."""
    page = Page(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    previous = ""  # the last non-blank line before the current one
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _NOT_RUN.match(line)
        if marker:
            page.markers.append((index + 1, marker["reason"]))
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip():
                previous = line
            index += 1
            continue
        indent, end = fence["indent"], index + 1
        while end < len(lines) and lines[end].rstrip() != f"{indent}```":
            end += 1
        if fence["lang"] == "python":
            body = [
                text[len(indent) :] if text.startswith(indent) else text.lstrip()
                for text in lines[index + 1 : end]
            ]
            reason = _NOT_RUN.match(previous)
            page.blocks.append(
                Block(
                    page.name,
                    index + 2,
                    "\n".join(body) + "\n",
                    reason["reason"] if reason else None,
                )
            )
        previous = line
        index = end + 1
    return page


def awaits(code: Any) -> bool:
    """Whether a compiled block uses top-level ``await`` (running it gives a coroutine)."""
    return bool(code.co_flags & inspect.CO_COROUTINE)
