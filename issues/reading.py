"""What a reader gets to see of an issue: one helper per concern.

Every decision about paid content goes through ``issues.access`` once per request
(``request_has_paid_access``); the helpers here take its answer as ``paid_access``
so pages, feeds, search, sitemap, BibTeX and meta tags all agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.http import HttpRequest
from django.utils.text import Truncator

from .access import request_has_paid_access
from .models import Issue, IssueQuerySet


def paid_access(request: HttpRequest) -> bool:
    """Return whether this request may read paid content (see issues.access)."""
    return request_has_paid_access(request)


def issues_for(request: HttpRequest) -> IssueQuerySet:
    """Return the issues this request may open: drafts and scheduled for staff only."""
    return Issue.objects.visible_to(getattr(request, "user", None))


@dataclass(frozen=True)
class ReadableBody:
    html: str
    # True when part (or all) of the issue is withheld from this reader.
    locked: bool


def readable_body(issue: Issue, *, paid_access: bool) -> ReadableBody:
    """Return the part of the issue's body this reader may see.

    Without a paywall break free_html is the whole body, so readers without paid
    access only ever need free_html and paid_html; those with it, body_html.
    """
    if paid_access:
        return ReadableBody(issue.body_html, False)
    if issue.is_paid_only and not issue.has_paywall:
        return ReadableBody("", True)
    return ReadableBody(issue.free_html, issue.has_paywall or issue.is_paid_only)


def public_description(issue: Issue, *, words: int = 40) -> str:
    """Return a short plain-text description made only of free content."""
    if issue.subtitle:
        return issue.subtitle
    return Truncator(issue.public_text).words(words)


def public_citations_q(prefix: str = "") -> Q:
    """Return a filter on Citation keeping those anyone may see."""
    return Q(**{f"{prefix}in_paid_part": False}) & ~Q(
        **{f"{prefix}issue__access": Issue.Access.PAID, f"{prefix}issue__paid_html": ""}
    )


def citations_q(*, paid_access: bool, prefix: str = "") -> Q:
    """Return a filter on Citation keeping those this reader may see."""
    return Q() if paid_access else public_citations_q(prefix)
