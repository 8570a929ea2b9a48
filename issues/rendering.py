"""Quire's one Markdown renderer, used by the admin preview, the web, feeds and email.

The public API:

``render_markdown(text, *, papers=None, preview=False) -> str``
    Turn Markdown into sanitized HTML. CommonMark plus tables, footnotes,
    strikethrough, fenced code highlighted by Pygments (``<pre class="highlight">``
    with Pygments' short CSS classes, styled by ``static/css/site.css``; an email
    renderer inlines that stylesheet), heading anchors, images and paper cards for
    ``[[arxiv:…]]``, ``[[doi:…]]`` and ``[[paper:slug]]`` references. Links in paper
    cards are absolute (``SITE_URL``), so the output works in email as it is.
    ``papers`` maps references to ``Paper`` objects; when it is None the references
    are looked up in one query. An unknown reference renders as a visible error
    marker, never silently dropped. The result always passes through nh3 with an
    explicit allowlist: no script, style, iframe, event attribute or
    ``javascript:``/``data:`` URL survives.

``render_issue_body(text) -> RenderedBody``
    Render an issue's body split at its paywall break (a line ``<!-- paywall -->``):
    ``body_html`` (everything), ``free_html`` (above the break), ``paid_html`` (below
    it, empty without a break), the plain text of the free part, the word count and
    the references found in each part.

``markdownify(text) -> str``
    The admin's live preview (``MARKDOWNX_MARKDOWNIFY_FUNCTION``): like
    ``render_markdown`` with unknown references shown as errors and the paywall break
    shown as a marker.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import nh3
from django.conf import settings
from django.db.models import Q
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.footnote import footnote_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

if TYPE_CHECKING:
    from .models import Paper

PAYWALL_RE = re.compile(r"^[ \t]*<!--\s*paywall\s*-->[ \t]*$", re.IGNORECASE | re.M)
REFERENCE_RE = re.compile(r"\[\[(arxiv|doi|paper):([^\]\s]+)\]\]", re.IGNORECASE)
ARXIV_VERSION_RE = re.compile(r"v\d+$")

# --- The sanitizer's allowlist -------------------------------------------------------
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "section", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul",
}  # fmt: skip
_CLASSED = {"code", "div", "hr", "li", "ol", "pre", "section", "span", "sup", "a"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title", "id"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "li": {"id"},
    "ol": {"start"},
    "td": {"style", "colspan", "rowspan"},
    "th": {"style", "colspan", "rowspan", "scope"},
    **{f"h{n}": {"id"} for n in range(1, 7)},
}
for _tag in _CLASSED:
    ALLOWED_ATTRIBUTES.setdefault(_tag, set()).add("class")
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


@cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        filter_style_properties={"text-align"},
        set_tag_attribute_values={"img": {"loading": "lazy"}},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def sanitize(html_text: str) -> str:
    """Return the HTML with everything outside Quire's allowlist removed."""
    return _cleaner().clean(html_text)


# --- References ----------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Reference:
    """A ``[[kind:value]]`` reference to a paper, normalized for lookup."""

    kind: str  # "arxiv", "doi" or "paper"
    value: str

    @classmethod
    def make(cls, kind: str, value: str) -> Reference:
        kind = kind.lower()
        if kind == "arxiv":
            value = ARXIV_VERSION_RE.sub("", value)
        elif kind == "doi":
            value = value.lower()
        return cls(kind, value)

    def __str__(self) -> str:
        return f"[[{self.kind}:{self.value}]]"


def paper_keys(paper: Paper) -> list[Reference]:
    """Return every reference that names this paper."""
    keys = [Reference("paper", paper.slug)]
    if paper.arxiv_id:
        keys.append(Reference.make("arxiv", paper.arxiv_id))
    if paper.doi:
        keys.append(Reference.make("doi", paper.doi))
    return keys


def resolve_references(references) -> dict[Reference, Paper]:
    """Return the papers named by these references, found in one query."""
    from .models import Paper

    references = set(references)
    if not references:
        return {}
    query = Q()
    for ref in references:
        if ref.kind == "arxiv":
            query |= Q(arxiv_id=ref.value) | Q(arxiv_id__startswith=f"{ref.value}v")
        elif ref.kind == "doi":
            query |= Q(doi__iexact=ref.value)
        else:
            query |= Q(slug=ref.value)
    found: dict[Reference, Paper] = {}
    for paper in Paper.objects.filter(query):
        for key in paper_keys(paper):
            if key in references:
                found.setdefault(key, paper)
    return found


def _reference_rule(state: StateInline, silent: bool) -> bool:
    if not state.src.startswith("[[", state.pos):
        return False
    match = REFERENCE_RE.match(state.src, state.pos)
    if match is None:
        return False
    if not silent:
        token = state.push("paper_ref", "", 0)
        token.meta = {"ref": Reference.make(match.group(1), match.group(2))}
        token.content = match.group(0)
    state.pos = match.end()
    return True


def _site_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def paper_card_html(paper: Paper) -> str:
    """Return the inline card shown where an issue references a paper."""
    esc = html.escape
    meta = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
    venue = " ".join(str(part) for part in (paper.venue, paper.year) if part)
    links = []
    if paper.arxiv_id:
        links.append(
            f'<a href="https://arxiv.org/abs/{esc(paper.arxiv_id)}">'
            f"arXiv:{esc(paper.arxiv_id)}</a>"
        )
    elif paper.doi:
        links.append(f'<a href="https://doi.org/{esc(paper.doi)}">DOI</a>')
    if paper.code_url:
        links.append(f'<a href="{esc(paper.code_url)}">code</a>')
    href = esc(_site_url(paper.get_absolute_url()))
    return (
        '<span class="paper-card">'
        f'<a class="paper-card-title" href="{href}">'
        f"{esc(paper.title)}</a>"
        f'<span class="paper-card-meta">{esc(meta)}'
        f"{' · ' + esc(venue) if venue else ''}</span>"
        + (
            f'<span class="paper-card-links">{" · ".join(links)}</span>'
            if links
            else ""
        )
        + "</span>"
    )


def paper_inline_html(paper: Paper) -> str:
    """Return a reference to a paper inside a sentence: its title and a short cite."""
    esc = html.escape
    href = esc(_site_url(paper.get_absolute_url()))
    who = paper.authors[0].split()[-1] if paper.authors else ""
    if len(paper.authors) > 1:
        who += " et al."
    cite = ", ".join(part for part in (who, str(paper.year or "")) if part)
    return f'<a class="paper-ref" href="{href}">{esc(paper.title)}</a>' + (
        f' <span class="paper-ref-cite">({esc(cite)})</span>' if cite else ""
    )


def _mark_card_references(state) -> None:
    """Show a reference alone in its paragraph as a card, inside a sentence as text."""
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        meaningful = [
            child
            for child in token.children
            if not (child.type == "text" and not child.content.strip())
            and child.type not in ("softbreak", "hardbreak")
        ]
        if len(meaningful) == 1 and meaningful[0].type == "paper_ref":
            meaningful[0].meta["card"] = True


def _render_reference(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    ref: Reference = token.meta["ref"]
    paper = env.get("papers", {}).get(ref)
    if paper is not None:
        if token.meta.get("card"):
            return paper_card_html(paper)
        return paper_inline_html(paper)
    if env.get("preview"):
        return (
            '<span class="paper-ref-error">Unknown paper reference '
            f"<code>{html.escape(str(ref))}</code>: add this paper under Papers "
            "first, or fix the reference.</span>"
        )
    return f'<span class="paper-ref-missing">{html.escape(token.content)}</span>'


# --- Code highlighting ---------------------------------------------------------------
@cache
def _formatter() -> HtmlFormatter:
    return HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, _attrs) -> str:
    lang = (lang or "").strip().split()[0] if lang and lang.strip() else ""
    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    body = highlight(code, lexer, _formatter())
    return (
        f'<pre class="highlight"><code class="language-{html.escape(lang)}">'
        f"{body}</code></pre>\n"
    )


def pygments_css() -> str:
    """Return the stylesheet for highlighted code (light theme)."""
    return _formatter().get_style_defs(".highlight")


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


def render_markdown(
    text: str, *, papers: dict | None = None, preview: bool = False
) -> str:
    """Return Markdown rendered to sanitized HTML (see the module docstring)."""
    parsed = _parse(text)
    if papers is None:
        papers = resolve_references(parsed.references)
    return _render(parsed, papers, preview=preview)


def html_to_text(html_text: str) -> str:
    """Return the readable text of rendered HTML, whitespace collapsed."""
    text = nh3.clean(html_text, tags=set(), clean_content_tags={"script", "style"})
    return " ".join(html.unescape(text).split())


@dataclass
class RenderedBody:
    body_html: str
    free_html: str
    paid_html: str
    free_text: str
    word_count: int
    free_references: list[Reference] = field(default_factory=list)
    paid_references: list[Reference] = field(default_factory=list)
    papers: dict = field(default_factory=dict)

    @property
    def references(self) -> list[Reference]:
        refs = list(self.free_references)
        refs += [ref for ref in self.paid_references if ref not in refs]
        return refs

    @property
    def unknown_references(self) -> list[Reference]:
        return [ref for ref in self.references if ref not in self.papers]


def split_paywall(text: str) -> tuple[str, str | None]:
    """Return the Markdown above and below the first paywall break (None if none)."""
    match = PAYWALL_RE.search(text or "")
    if match is None:
        return text or "", None
    return text[: match.start()], text[match.end() :]


def render_issue_body(text: str) -> RenderedBody:
    """Render an issue's body, split at its paywall break, in one paper lookup."""
    free_md, paid_md = split_paywall(text)
    free = _parse(free_md)
    paid = _parse(paid_md) if paid_md is not None else None
    papers = resolve_references(free.references + (paid.references if paid else []))
    free_html = _render(free, papers)
    paid_html = _render(paid, papers) if paid is not None else ""
    text_of_free = html_to_text(free_html)
    return RenderedBody(
        body_html=free_html + paid_html,
        free_html=free_html,
        paid_html=paid_html,
        free_text=text_of_free,
        word_count=len(text_of_free.split()) + len(html_to_text(paid_html).split()),
        free_references=free.references,
        paid_references=paid.references if paid else [],
        papers=papers,
    )


def markdownify(text: str) -> str:
    """Return the admin's live preview of Markdown (MARKDOWNX_MARKDOWNIFY_FUNCTION)."""
    free_md, paid_md = split_paywall(text)
    free = _parse(free_md)
    paid = _parse(paid_md) if paid_md is not None else None
    papers = resolve_references(free.references + (paid.references if paid else []))
    out = _render(free, papers, preview=True)
    if paid is not None:
        out += (
            '<div class="paywall-marker">Paywall: readers who do not pay see '
            "everything above this line, and a call to support below it.</div>"
        )
        out += _render(paid, papers, preview=True)
    return out
