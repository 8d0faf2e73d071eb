"""The documentation site works opened from disk: every link names a file that exists."""

from __future__ import annotations

import html.parser
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_every_local_link_of_every_page_names_an_existing_file(site: Path) -> None:
    # 404.html is only ever shown by a web server, which serves it for any path:
    # its links are absolute on purpose.
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")
    assert len(pages) > 20
    broken = []
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:
                continue  # another site, or an anchor on this page
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {link}")
    assert broken == []


def test_search_works_without_a_server(site: Path) -> None:
    # Browsers refuse fetch() on file://: the index must come as a script.
    assert (site / "search" / "search_index.js").is_file()


def test_identifiers_in_table_cells_do_not_break_mid_word(site: Path) -> None:
    css = (site / "stylesheets" / "extra.css").read_text()
    rule = css[css.index(".md-typeset td code") :]
    rule = rule[: rule.index("}")]
    assert "white-space: nowrap" in rule
    assert "word-break: normal" in rule
