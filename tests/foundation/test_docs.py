"""README.md and docs/*.md render as CommonMark + tables: no table falls apart into raw pipes,
and every relative link (and its #anchor) points at something that exists."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

md = MarkdownIt("commonmark").enable("table")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    tokens = md.parse(path.read_text())
    out: set[str] = set()
    seen: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            slug = github_slug(tokens[i + 1].content.replace("`", ""))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(tokens) -> list[str]:
    found = []
    for tok in tokens:
        for child in tok.children or []:
            if child.type == "link_open":
                found.append(child.attrGet("href"))
            elif child.type == "image":
                found.append(child.attrGet("src"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_tables_render_as_tables(page: Path):
    text = page.read_text()
    tokens = md.parse(text)
    covered: set[int] = set()
    for tok in tokens:
        if tok.map and tok.type in ("table_open", "fence", "code_block", "html_block"):
            covered.update(range(*tok.map))
    broken = [f"line {n + 1}: {line[:60]}" for n, line in enumerate(text.split("\n"))
              if line.lstrip().startswith("|") and n not in covered]
    assert broken == [], f"{page.name}: table rows outside any rendered table:\n" + "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path):
    bad = []
    for href in links(md.parse(page.read_text())):
        if not href or re.match(r"^[a-z][a-z0-9+.-]*:", href):  # http:, https:, mailto: ...
            continue
        target, _, anchor = unquote(href).partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            bad.append(f"{href}: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} does not exist")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            bad.append(f"{href}: no heading #{anchor} in {path.name}")
    assert bad == [], f"{page.name}: broken links:\n" + "\n".join(bad)


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference material into docs/"


def test_the_checker_catches_a_broken_table_and_link(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n\n[x](missing.md) [y](#nowhere)\n")
    with pytest.raises(AssertionError, match="line 5"):
        test_tables_render_as_tables(page)
    with pytest.raises(AssertionError, match=r"missing\.md.*\n.*nowhere"):
        test_relative_links_resolve(page)
