"""The markdown-it parser with Quire's plugins, and Markdown to sanitized HTML."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.footnote import footnote_plugin

from .highlighting import _highlight
from .references import (
    Reference,
    _mark_card_references,
    _reference_rule,
    _render_reference,
    resolve_references,
)
from .sanitizer import sanitize


@cache
def _markdown() -> MarkdownIt:
    md = (
        MarkdownIt("commonmark", {"html": True, "highlight": _highlight})
        .enable(["table", "strikethrough"])
        .use(footnote_plugin)
        .use(anchors_plugin, min_level=2, max_level=4, permalink=True,
             permalinkSymbol="#")
    )  # fmt: skip
    md.inline.ruler.before("link", "paper_ref", _reference_rule)
    md.core.ruler.push("paper_cards", _mark_card_references)
    md.add_render_rule("paper_ref", _render_reference)
    return md


def _collect_references(tokens) -> list[Reference]:
    found: dict[Reference, None] = {}  # ordered, and a set: one lookup per ref
    for token in tokens:
        for child in token.children or ():
            if child.type == "paper_ref":
                found.setdefault(child.meta["ref"], None)
    return list(found)


@dataclass
class _Parsed:
    tokens: list
    env: dict
    references: list[Reference]


def _parse(text: str) -> _Parsed:
    env: dict = {}
    tokens = _markdown().parse(text or "", env)
    return _Parsed(tokens, env, _collect_references(tokens))


def _render(parsed: _Parsed, papers: dict, *, preview: bool = False) -> str:
    md = _markdown()
    env = {**parsed.env, "papers": papers, "preview": preview}
    return sanitize(md.renderer.render(parsed.tokens, md.options, env))


def find_references(text: str) -> list[Reference]:
    """Return the paper references in Markdown, in order of first appearance."""
    return _parse(text).references


def find_unknown_references(text: str) -> list[Reference]:
    """Return the paper references in Markdown that name no paper (one query)."""
    references = find_references(text)
    papers = resolve_references(references)
    return [ref for ref in references if ref not in papers]


def render_markdown(
    text: str, *, papers: dict | None = None, preview: bool = False
) -> str:
    """Return Markdown rendered to sanitized HTML (see the module docstring)."""
    parsed = _parse(text)
    if papers is None:
        papers = resolve_references(parsed.references)
    return _render(parsed, papers, preview=preview)


# The permalink the anchors plugin puts in every heading: <a class="header-anchor"
# href="#slug">#</a>, after a space. Its text is only ever the symbol.
_HEADING_ANCHOR = re.compile(r'\s?<a\b[^>]*\bclass="header-anchor"[^>]*>[^<]*</a>')


def without_heading_anchors(html_text: str) -> str:
    """Return rendered HTML without the headings' permalinks (for email and feeds)."""
    return _HEADING_ANCHOR.sub("", html_text)


# Elements whose text is not part of what a reader reads: the heading permalinks
# ("#") and footnote back-links ("↩︎") that the Markdown plugins add.
_SKIPPED_CLASSES = {"header-anchor", "footnote-backref"}
_SKIPPED_TAGS = {"script", "style", "template"}
# Parts of a paper card that follow its title: set off so that title, authors and
# links do not run together ("A ConvNet for the 2020s — Zhuang Liu, … — arXiv:…").
_CARD_PARTS = {"paper-card-meta", "paper-card-links"}
_VOID_TAGS = {"area", "br", "col", "embed", "hr", "img", "input", "source", "wbr"}


_INLINE_TAGS = {
    "a", "abbr", "b", "code", "del", "em", "i", "ins", "kbd", "mark", "q", "s",
    "small", "span", "strong", "sub", "sup", "u",
}  # fmt: skip
# The sanitizer's output is well-formed: comments gone, every attribute value in
# double quotes (a ">" may sit inside one, a '"' never does). So a tag is "<", a
# name, then characters or quoted values up to ">": parts that start with
# different characters, read once, without backtracking.
_TAG = re.compile(r'<(/?)([A-Za-z][A-Za-z0-9]*)((?:[^>"]|"[^"]*")*)>')
_CLASS = re.compile(r'\sclass="([^"]*)"')


def html_to_text(html_text: str) -> str:
    """Return the readable text of rendered HTML, whitespace collapsed."""
    html_text = html_text or ""
    parts: list[str] = []
    skipping = 0  # depth inside a skipped element
    last = 0
    for tag in _TAG.finditer(html_text):
        if not skipping and tag.start() > last:
            parts.append(html.unescape(html_text[last : tag.start()]))
        last = tag.end()
        closing, name = tag[1], tag[2].lower()
        if closing:
            if skipping:
                skipping -= 1
            elif name not in _INLINE_TAGS:
                parts.append(" ")
            continue
        if name in _VOID_TAGS:
            parts.append(" ")
            continue
        found = _CLASS.search(tag[3]) if "class=" in tag[3] else None
        classes = set(html.unescape(found[1]).split()) if found else set()
        if skipping or name in _SKIPPED_TAGS or classes & _SKIPPED_CLASSES:
            skipping += 1
        elif classes & _CARD_PARTS:
            parts.append(" — ")
        else:
            # Any element boundary may separate words (cells, items, blocks);
            # a space too many is collapsed below.
            parts.append(" " if name not in _INLINE_TAGS else "")
    if not skipping:
        parts.append(html.unescape(html_text[last:]))
    return " ".join("".join(parts).split())
