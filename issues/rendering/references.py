"""Paper references: ``[[arxiv:…]]``, ``[[doi:…]]`` and ``[[paper:slug]]``.

Parsed by a markdown-it inline rule, looked up in one query, rendered as a card when
alone in a paragraph and as a short citation inside a sentence.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Left, Length, Lower, Reverse, StrIndex
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from markdown_it.rules_inline import StateInline

if TYPE_CHECKING:
    from ..models import Paper


# The value is bounded (a DOI field holds 200 characters): the parser tries this at
# every "[[", and an unbounded one read to the end of the text from each of them
# ("[[arxiv:[[arxiv:…" took a minute for 20,000).
REFERENCE_RE = re.compile(r"\[\[(arxiv|doi|paper):([^\]\s]{1,200})\]\]", re.IGNORECASE)
ARXIV_VERSION_RE = re.compile(r"v\d+$")
# Distinct references looked up per query: every database Quire runs on takes this
# many parameters in one statement (SQLite's default limit is 32,766).
LOOKUP_CHUNK = 30_000
# What a card, a citation and the list of cited papers read: not the summaries,
# which may be long and would be loaded for each of thousands of papers.
PAPER_FIELDS = [
    "pk", "title", "slug", "authors", "year", "venue", "arxiv_id", "doi", "url",
    "code_url",
]  # fmt: skip


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

    @classmethod
    def parse(cls, text: str) -> Reference | None:
        """Return the reference written as text ("[[arxiv:2201.03545]]"), or None."""
        match = REFERENCE_RE.fullmatch(text or "")
        return cls.make(match.group(1), match.group(2)) if match else None

    def __str__(self) -> str:
        return f"[[{self.kind}:{self.value}]]"

    @property
    def label(self) -> str:
        """Return the reference as a reader may read it, without the brackets."""
        if self.kind == "arxiv":
            return f"arXiv:{self.value}"
        if self.kind == "doi":
            return f"doi:{self.value}"
        return self.value


def paper_keys(paper: Paper) -> list[Reference]:
    """Return every reference that names this paper."""
    keys = [Reference("paper", paper.slug)]
    if paper.arxiv_id:
        keys.append(Reference.make("arxiv", paper.arxiv_id))
    if paper.doi:
        keys.append(Reference.make("doi", paper.doi))
    return keys


def _with_bare_arxiv_id(papers):
    """Return the papers with _arxiv: the arXiv id without its version (v2), in SQL."""
    # The version is what follows the last "v", when it comes after any "/"
    # (an old-style archive such as solv-int/9901001 has a "v" of its own).
    return papers.alias(
        _v=StrIndex(Reverse("arxiv_id"), Value("v")),
        _slash=StrIndex(Reverse("arxiv_id"), Value("/")),
    ).alias(
        _arxiv=Case(
            When(
                Q(_v__gt=0) & (Q(_slash=0) | Q(_v__lt=F("_slash"))),
                then=Left("arxiv_id", Length("arxiv_id") - F("_v")),
            ),
            default=F("arxiv_id"),
            output_field=CharField(),
        )
    )


def resolve_references(references) -> dict[Reference, Paper]:
    """Return the papers named by these references, found in one query.

    One IN list per kind of reference, so the query grows with the number of
    references, never with its square (one OR per reference did, and SQLite
    refused more than a few hundred).
    """
    references = list(dict.fromkeys(references))
    found: dict[Reference, Paper] = {}
    for start in range(0, len(references), LOOKUP_CHUNK):
        _resolve_chunk(set(references[start : start + LOOKUP_CHUNK]), found)
    return found


def _resolve_chunk(references: set[Reference], found: dict) -> None:
    # issues.models imports the renderer (bodies are rendered on save), so the
    # renderer reaches Paper only once both are loaded.
    from ..models import Paper

    values: dict[str, list[str]] = {"arxiv": [], "doi": [], "paper": []}
    for ref in references:
        values[ref.kind].append(ref.value)
    papers = Paper.objects.only(*PAPER_FIELDS)
    query = Q(pk__in=[])
    if values["paper"]:
        query |= Q(slug__in=values["paper"])
    if values["doi"]:
        papers = papers.alias(_doi=Lower("doi"))
        query |= Q(_doi__in=values["doi"])
    if values["arxiv"]:
        papers = _with_bare_arxiv_id(papers)
        query |= Q(_arxiv__in=values["arxiv"])
    for paper in papers.filter(query):
        for key in paper_keys(paper):
            if key in references:
                found.setdefault(key, paper)


def reference_rule(state: StateInline, silent: bool) -> bool:
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


def paper_card_html(paper: Paper, *, url: str | None = None) -> str:
    """Return the inline card shown where an issue references a paper.

    url: the paper's page, if already known.
    """
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
    href = esc(url or paper.get_absolute_url())
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


def paper_inline_html(paper: Paper, *, url: str | None = None) -> str:
    """Return a reference to a paper inside a sentence: its title and a short cite.

    url: the paper's page, if already known.
    """
    esc = html.escape
    href = esc(url or paper.get_absolute_url())
    who = paper.authors[0].split()[-1] if paper.authors else ""
    if len(paper.authors) > 1:
        who += " et al."
    cite = ", ".join(part for part in (who, str(paper.year or "")) if part)
    return f'<a class="paper-ref" href="{href}">{esc(paper.title)}</a>' + (
        f' <span class="paper-ref-cite">({esc(cite)})</span>' if cite else ""
    )


# A slug no paper has, to find where a slug goes in the papers' URL.
_SLUG_MARK = "quire-slug-mark"


def _paper_url_parts() -> tuple[str, str]:
    """Return what comes before and after the slug in a paper's URL (one reverse).

    A body citing 20,000 papers would otherwise spend half its time in reverse().
    """
    url = reverse("issues:paper", kwargs={"slug": _SLUG_MARK})
    prefix, _, suffix = url.partition(_SLUG_MARK)
    return prefix, suffix


def mark_card_references(state) -> None:
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


def render_reference(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    ref: Reference = token.meta["ref"]
    paper = env.get("papers", {}).get(ref)
    if paper is not None:
        # Built once per paper and form (a card, a citation): a body that cites
        # a paper a thousand times reverses its URL once.
        card = bool(token.meta.get("card"))
        cards = env.setdefault("cards", {})
        key = (id(paper), card)
        if key not in cards:
            if "paper_url" not in env:
                env["paper_url"] = _paper_url_parts()
            prefix, suffix = env["paper_url"]
            make = paper_card_html if card else paper_inline_html
            cards[key] = make(paper, url=f"{prefix}{paper.slug}{suffix}")
        return cards[key]
    # Only the author's preview flags it. Everything readers get (the stored HTML
    # behind pages, feeds and email) shows plain text: publishing refuses an issue
    # with unknown references, so readers meet one only when a paper is deleted
    # after the issue went out.
    if env.get("preview"):
        return (
            '<span class="paper-ref-error">Unknown paper reference '
            f"<code>{html.escape(str(ref))}</code>: {_add_paper_link(ref)}"
            "or fix the reference.</span>"
        )
    return html.escape(ref.label)


def _add_paper_link(ref: Reference) -> str:
    """Return the preview's "add this paper" link: the admin's "Add paper from id"
    page, which static/js/paper-add.js turns into one click."""
    if ref.kind == "paper":
        return "add this paper under Papers first, "
    try:
        url = reverse("admin:issues_paper_add_from_id")
    except NoReverseMatch:
        return "add this paper under Papers first, "
    query = urlencode({"identifier": f"{ref.kind}:{ref.value}"})
    return (
        f'<a class="paper-ref-add" href="{html.escape(url)}?{html.escape(query)}">'
        "add this paper</a> from arXiv or Crossref, "
    )
