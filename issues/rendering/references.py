"""Paper references: ``[[arxiv:…]]``, ``[[doi:…]]`` and ``[[paper:slug]]``.

Parsed by a markdown-it inline rule, looked up in one query, rendered as a card when
alone in a paragraph and as a short citation inside a sentence.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q
from markdown_it.rules_inline import StateInline

if TYPE_CHECKING:
    from ..models import Paper


REFERENCE_RE = re.compile(r"\[\[(arxiv|doi|paper):([^\]\s]+)\]\]", re.IGNORECASE)
ARXIV_VERSION_RE = re.compile(r"v\d+$")


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


def resolve_references(references) -> dict[Reference, Paper]:
    """Return the papers named by these references, found in one query."""
    from ..models import Paper

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
    href = esc(paper.get_absolute_url())
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
    href = esc(paper.get_absolute_url())
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
    # Only the author's preview flags it. Everything readers get (the stored HTML
    # behind pages, feeds and email) shows plain text: publishing refuses an issue
    # with unknown references, so readers meet one only when a paper is deleted
    # after the issue went out.
    if env.get("preview"):
        return (
            '<span class="paper-ref-error">Unknown paper reference '
            f"<code>{html.escape(str(ref))}</code>: add this paper under Papers "
            "first, or fix the reference.</span>"
        )
    return html.escape(ref.label)
