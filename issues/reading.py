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

from .access import may_read_unpublished, request_has_paid_access
from .models import Issue, IssueQuerySet
from .rendering.limits import ContentTooLarge, check_html
from .rendering.markup import refused_html


def paid_access(request: HttpRequest) -> bool:
    """Return whether this request may read paid content (see issues.access)."""
    return request_has_paid_access(request)


def issues_for(request: HttpRequest) -> IssueQuerySet:
    """Return the issues this request may open: drafts and scheduled for staff only."""
    if may_read_unpublished(request):
        return Issue.objects.on_site()
    return Issue.objects.published()


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
        return ReadableBody(_checked(issue, issue.body_html), False)
    if issue.is_paid_only and not issue.has_paywall:
        return ReadableBody("", True)
    return ReadableBody(
        _checked(issue, issue.free_html), issue.has_paywall or issue.is_paid_only
    )


# Stored HTML found safe, by issue and version: each is read once per process.
_SAFE: set[tuple] = set()


def _checked(issue: Issue, html_text: str) -> str:
    """Return stored HTML, or a notice if it would nest too deep for native code.

    Everything rendered since the limits existed is within them; HTML stored
    before (a body of 50,000 nested <div>) would crash the email's CSS inliner,
    which gets what this returns. Checked once per issue version, so pages do
    not pay for it.
    """
    key = (issue.pk, issue.updated, len(html_text))
    if issue.pk is not None and key in _SAFE:
        return html_text
    try:
        check_html(html_text)
    except ContentTooLarge as exc:
        return refused_html(exc)
    if issue.pk is not None:
        _SAFE.add(key)
    return html_text


def readable_contents(issue: Issue, *, paid_access: bool) -> list[dict]:
    """Return the headings of the part of the body this reader may see.

    The same rule as readable_body: below the paywall break only with paid
    access, and nothing of a paid-only issue without a break.
    """
    if paid_access:
        return list(issue.headings)
    if issue.is_paid_only and not issue.has_paywall:
        return []
    return [heading for heading in issue.headings if not heading.get("paid")]


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
