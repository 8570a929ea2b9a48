"""The markdown-it parser with Quire's plugins, and Markdown to sanitized HTML."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache

import nh3
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
    found: list[Reference] = []
    for token in tokens:
        for child in token.children or ():
            if child.type == "paper_ref" and child.meta["ref"] not in found:
                found.append(child.meta["ref"])
    return found


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


def html_to_text(html_text: str) -> str:
    """Return the readable text of rendered HTML, whitespace collapsed."""
    text = nh3.clean(html_text, tags=set(), clean_content_tags={"script", "style"})
    return " ".join(html.unescape(text).split())
