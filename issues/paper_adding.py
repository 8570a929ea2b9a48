"""Adding a paper from its arXiv id, DOI or link: its details asked of arXiv or
Crossref (issues.paper_metadata), the paper written once, the issues that already
reference it refreshed.

The admin's "Add paper from id" page fills the add form from ``initial_from``; the
editor's one click ("add this paper" on an unknown reference) calls
``add_paper_from_identifier``.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import services
from .models import Paper
from .paper_metadata import Identifier, PaperDetails, lookup_paper, parse_identifier
from .paper_metadata.arxiv import bare_id

# What Markdown would read as markup in an abstract: emphasis, links, code, HTML,
# and a heading, list or quote at a line's start.
MARKDOWN_SPECIAL_RE = re.compile(r"([\\`*_\[\]<>|])")
LINE_START_RE = re.compile(r"^(\s*)([#>+-]|\d+\.)", re.MULTILINE)


class PaperNotAdded(Exception):
    """The paper could not be added; str() says why, for the author."""


def escape_markdown(text: str) -> str:
    """Return plain text as Markdown that shows it as it is."""
    text = MARKDOWN_SPECIAL_RE.sub(r"\\\1", text)
    return LINE_START_RE.sub(r"\1\\\2", text)


def existing_paper(identifier: Identifier) -> Paper | None:
    """Return the paper already stored under this arXiv id (any version) or DOI."""
    if identifier.kind == "doi":
        return Paper.objects.filter(doi__iexact=identifier.value).first()
    bare = bare_id(identifier.value)
    return (
        Paper.objects.filter(Q(arxiv_id=bare) | Q(arxiv_id__startswith=f"{bare}v"))
        .order_by("pk")
        .first()
    )


def initial_from(details: PaperDetails) -> dict:
    """Return the Paper form's initial values from the paper's fetched details."""
    return {
        "title": details.title,
        "authors": list(details.authors),
        "year": details.year,
        "venue": details.venue,
        "arxiv_id": details.arxiv_id,
        "doi": details.doi,
        "url": details.url,
        "code_url": details.code_url,
        "summary": escape_markdown(details.summary),
    }


def paper_from(details: PaperDetails) -> Paper:
    """Return an unsaved Paper filled from its fetched details."""
    paper = Paper(**initial_from(details))
    if details.arxiv_version is not None:
        paper.arxiv_latest_version = details.arxiv_version
        paper.arxiv_checked_at = timezone.now()
    return paper


def add_paper_from_identifier(*, identifier: str) -> tuple[Paper, bool]:
    """Return the paper the identifier names, added from arXiv or Crossref when new,
    and whether it was added. Raises PaperLookupError or PaperNotAdded."""
    parsed = parse_identifier(identifier)
    found = existing_paper(parsed)
    if found is not None:
        return found, False
    # The API call happens outside any transaction: it may take seconds.
    details = lookup_paper(parsed)
    return _store(paper_from(details), parsed)


@transaction.atomic
def _store(paper: Paper, parsed: Identifier) -> tuple[Paper, bool]:
    found = existing_paper(parsed)  # added meanwhile (a second click)
    if found is not None:
        return found, False
    try:
        paper.full_clean(exclude=["slug"])
    except ValidationError as exc:
        raise PaperNotAdded(
            "The paper's details do not fit: "
            + " ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        ) from exc
    paper.save()
    # Issues that referenced it as unknown show its card from now on.
    services.rerender_citing_issues(paper=paper)
    return paper, True
