"""The markdown-it parser with Quire's plugins, and Markdown to sanitized HTML."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.anchors.index import slugify as anchor_slugify
from mdit_py_plugins.footnote import footnote_plugin

from .figures import continued_numbering, sidenotes_plugin
from .highlighting import highlight_code
from .limits import ContentTooLarge, check_html, check_markdown
from .math import math_plugin
from .rawtext import escape_unclosed_raw_text, html_block_unless_unclosed
from .references import (
    Reference,
    mark_card_references,
    reference_rule,
    render_reference,
    resolve_references,
)
from .sanitizer import sanitize

# How deep markdown-it nests blocks (each list level takes two): above the deepest
# text the limits let through (QUIRE_BODY_MAX_DEPTH), so nothing is dropped; it
# still stops the parser's recursion.
MAX_BLOCK_NESTING = 100
# The heading levels that get an id, a permalink and a line in the table of contents.
HEADING_LEVELS = range(2, 5)
# Every id the renderer writes on a heading starts with this, so that no heading
# ("## location", "## cookie") becomes a name on window or document that a script
# might read (DOM clobbering); the sanitizer holds every other id to it too.
HEADING_ID_PREFIX = "h-"
# Inside a paragraph (links in links, brackets) the preset's 20 is plenty, and the
# parser's work on unclosed brackets grows with it: 100 made "[[arxiv:" repeated
# 20,000 times take four seconds instead of one.
MAX_INLINE_NESTING = 20


def _build(max_nesting: int) -> MarkdownIt:
    md = (
        MarkdownIt(
            "commonmark",
            {"html": True, "highlight": highlight_code, "maxNesting": max_nesting},
        )
        .enable(["table", "strikethrough"])
        .use(footnote_plugin)
        .use(math_plugin)
        .use(anchors_plugin, min_level=HEADING_LEVELS.start,
             max_level=HEADING_LEVELS.stop - 1, permalink=True, permalinkSymbol="#")
        .use(sidenotes_plugin)
    )  # fmt: skip
    # Before the anchors plugin, which keeps the ids it finds and links to them.
    md.core.ruler.before("anchor", "heading_ids", heading_ids)
    md.inline.ruler.before("link", "paper_ref", reference_rule)
    md.block.ruler.at("html_block", html_block_unless_unclosed)
    md.core.ruler.push("paper_cards", mark_card_references)
    md.core.ruler.push("raw_text_tags", escape_unclosed_raw_text)
    md.add_render_rule("paper_ref", render_reference)
    return md


@cache
def _markdown() -> MarkdownIt:
    md = _build(MAX_BLOCK_NESTING)
    md.core.ruler.at("inline", _parse_inline)
    return md


@cache
def _inline_markdown() -> MarkdownIt:
    return _build(MAX_INLINE_NESTING)


def _parse_inline(state) -> None:
    """Parse paragraphs' inline content with the parser that nests less deep."""
    inline_md = _inline_markdown()
    for token in state.tokens:
        if token.type == "inline":
            if token.children is None:
                token.children = []
            inline_md.inline.parse(token.content, inline_md, state.env, token.children)


@dataclass(frozen=True)
class Heading:
    level: int
    id: str
    text: str


def heading_ids(state) -> None:
    """Give each heading of HEADING_LEVELS a prefixed id, unique in the body.

    The ids already taken (env["heading_ids"]) are shared by both sides of a
    paywall break, so that the free and the paid part never repeat one. Each
    heading is listed in env["headings"] for the table of contents.
    """
    taken: set[str] = state.env.setdefault("heading_ids", set())
    found: list[Heading] = state.env.setdefault("headings", [])
    tokens = state.tokens
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or int(token.tag[1]) not in HEADING_LEVELS:
            continue
        children = tokens[index + 1].children or []
        text = " ".join(
            "".join(
                child.content
                for child in children
                if child.type in ("text", "code_inline")
            ).split()
        )
        base = HEADING_ID_PREFIX + (anchor_slugify(text).strip("-")[:80] or "section")
        slug, n = base, 1
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        token.attrSet("id", slug)
        found.append(Heading(int(token.tag[1]), slug, text))


def _collect_references(tokens) -> list[Reference]:
    found: dict[Reference, None] = {}  # ordered, and a set: one lookup per ref
    for token in tokens:
        for child in token.children or ():
            if child.type == "paper_ref":
                found.setdefault(child.meta["ref"], None)
    return list(found)


@dataclass
class ParsedBody:
    tokens: list
    env: dict
    references: list[Reference]

    @property
    def headings(self) -> list[Heading]:
        return self.env.get("headings", [])


def parse_body(
    text: str,
    *,
    taken_ids: set[str] | None = None,
    continues: ParsedBody | None = None,
) -> ParsedBody:
    """Parse Markdown; taken_ids are heading ids already used by the same page.

    continues: the part this one follows on the page (above the paywall break),
    whose image, figure and footnote numbers it carries on.
    """
    env: dict = {"heading_ids": set(taken_ids or ())}
    if continues is not None:
        env.update(continued_numbering(continues.env))
    tokens = _markdown().parse(text or "", env)
    return ParsedBody(tokens, env, _collect_references(tokens))


def render_parsed(parsed: ParsedBody, papers: dict, *, preview: bool = False) -> str:
    """Return the parsed Markdown as sanitized HTML.

    Raises ContentTooLarge if the HTML would nest too deep for the sanitizer.
    """
    md = _markdown()
    env = {**parsed.env, "papers": papers, "preview": preview, "cards": {}}
    html_text = md.renderer.render(parsed.tokens, md.options, env)
    check_html(html_text)
    return sanitize(html_text)


def refused_html(exc: ContentTooLarge, *, preview: bool = False) -> str:
    """Return what shows in place of text over a limit: why, and how to fix it.

    Built here, escaped, never parsed: the text it replaces reaches no parser.
    """
    title = "This text was not rendered." if preview else "This text cannot be shown."
    return (
        '<div class="content-refused"><p><strong>'
        f"{title}</strong> {html.escape(exc.message)}</p></div>"
    )


def find_references(text: str) -> list[Reference]:
    """Return the paper references in Markdown, in order of first appearance.

    None for text over a limit: it renders as a notice that cites nothing.
    """
    try:
        check_markdown(text)
    except ContentTooLarge:
        return []
    return parse_body(text).references


def find_unknown_references(text: str) -> list[Reference]:
    """Return the paper references in Markdown that name no paper (one query)."""
    references = find_references(text)
    papers = resolve_references(references)
    return [ref for ref in references if ref not in papers]


def render_markdown(
    text: str, *, papers: dict | None = None, preview: bool = False
) -> str:
    """Return Markdown rendered to sanitized HTML (see the module docstring).

    Text over a limit (issues.rendering.limits) is never parsed: the result is a
    notice saying what is too large.
    """
    try:
        check_markdown(text)
        parsed = parse_body(text)
        if papers is None:
            papers = resolve_references(parsed.references)
        return render_parsed(parsed, papers, preview=preview)
    except ContentTooLarge as exc:
        return refused_html(exc, preview=preview)


# The permalink the anchors plugin puts in every heading: <a class="header-anchor"
# href="#slug">#</a>, after a space. Its text is only ever the symbol.
_HEADING_ANCHOR = re.compile(r'\s?<a\b[^>]*\bclass="header-anchor"[^>]*>[^<]*</a>')


def without_heading_anchors(html_text: str) -> str:
    """Return rendered HTML without the headings' permalinks (for email and feeds)."""
    return _HEADING_ANCHOR.sub("", html_text)


# Elements whose text is not part of what a reader reads: the heading permalinks
# ("#") and footnote back-links ("↩︎") that the Markdown plugins add, and the copies
# of footnotes shown beside the text (the endnotes hold them once).
_SKIPPED_CLASSES = {"header-anchor", "footnote-backref", "sidenote"}
# A formula's LaTeX annotation repeats what its MathML already says.
_SKIPPED_TAGS = {"script", "style", "template", "annotation"}
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


def readable_text(html_text: str) -> str:
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
