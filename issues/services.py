"""Writes on content: recording citations, refreshing rendered issues."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Citation, Issue, Paper
from .pagecache import pages
from .rendering import (
    Reference,
    RenderedBody,
    paper_keys,
    render_issue_bodies,
    render_markdown,
)


@transaction.atomic
def record_citations(*, issue: Issue, rendered: RenderedBody | None = None) -> None:
    """Cite every paper the body references and number the list in body order.

    The papers the body references come in order of first appearance; citations
    added by hand without a reference follow, in their earlier order. Ranked
    citations (a "top papers" list) lead, by rank, since such a list reads in
    rank order whatever order the body discusses them in. Notes and ranks are
    kept; a citation whose reference left the body stays (among the hand-added
    ones) until the author removes it from the list.
    """
    if rendered is None:
        rendered = issue.render()
    existing = {c.paper_id: c for c in issue.citations.all()}
    stored = {c.pk: (c.position, c.in_paid_part) for c in existing.values()}
    free_refs = set(rendered.free_references)
    ordered: list[Citation] = []
    referenced: set[int] = set()
    for ref in rendered.references:
        paper = rendered.papers.get(ref)
        if paper is None or paper.pk in referenced:
            continue
        referenced.add(paper.pk)
        citation = existing.get(paper.pk) or Citation(issue=issue, paper=paper)
        citation.in_paid_part = not any(key in free_refs for key in paper_keys(paper))
        ordered.append(citation)
    ordered += sorted(
        (c for c in existing.values() if c.paper_id not in referenced),
        key=lambda c: (c.position, c.pk),
    )
    # The sort is stable: unranked citations keep the order built above.
    ordered.sort(key=lambda c: (c.rank is None, c.rank or 0))
    for position, citation in enumerate(ordered, start=1):
        citation.position = position
    Citation.objects.bulk_create([c for c in ordered if c.pk is None])
    Citation.objects.bulk_update(
        [
            c
            for c in ordered
            if c.pk in stored and stored[c.pk] != (c.position, c.in_paid_part)
        ],
        ["position", "in_paid_part"],
    )


RENDERED_ISSUE_FIELDS = ["body_html", "free_html", "paid_html", "public_text",
                         "word_count"]  # fmt: skip


def rerender_stored_html(*, batch_size: int = 20) -> int:
    """Render every issue body and paper summary again; return how many changed.

    The HTML is stored on save, so what is already stored keeps the renderer of
    the day it was saved until this runs (`manage.py rerender_content`).
    """
    changed = 0
    now = timezone.now()
    for issues in _batches(Issue.objects.all(), batch_size):
        before = [[getattr(i, name) for name in RENDERED_ISSUE_FIELDS] for i in issues]
        for issue, rendered in zip(
            issues, render_issue_bodies([i.body for i in issues]), strict=True
        ):
            issue.render(rendered)
            issue.updated = now
        # Only what changed: an unchanged page keeps its ETag and cached copies.
        updated = [
            issue
            for issue, old in zip(issues, before, strict=True)
            if old != [getattr(issue, name) for name in RENDERED_ISSUE_FIELDS]
        ]
        Issue.objects.bulk_update(updated, [*RENDERED_ISSUE_FIELDS, "updated"])
        changed += len(updated)
    for papers in _batches(Paper.objects.all(), batch_size * 10):
        updated = []
        for paper in papers:
            html = render_markdown(paper.summary, papers={})
            if html != paper.summary_html:
                paper.summary_html = html
                updated.append(paper)
        Paper.objects.bulk_update(updated, ["summary_html"])
        changed += len(updated)
    # bulk_update skips Issue.save, which forgets this process's cached pages.
    pages.clear()
    return changed


def _batches(queryset, size: int):
    """Yield lists of rows, in primary key order, size at a time."""
    last = 0
    while batch := list(queryset.filter(pk__gt=last).order_by("pk")[:size]):
        yield batch
        last = batch[-1].pk


def rerender_issues_citing(
    *, paper_id: int, keys: list[Reference] | None = None
) -> int:
    """Re-render every issue that cites or references this paper; return how many.

    keys: the references that named the paper, for one that has been deleted.
    """
    if keys is None:
        paper = Paper.objects.filter(pk=paper_id).first()
        if paper is None:
            return 0
        keys = paper_keys(paper)
    query = Q(citations__paper_id=paper_id)
    for key in keys:
        query |= Q(body__icontains=f"[[{key.kind}:{key.value}")
    issues = list(Issue.objects.filter(query).distinct())
    now = timezone.now()
    with transaction.atomic():
        for issue in issues:
            rendered = issue.render()
            issue.updated = now
            record_citations(issue=issue, rendered=rendered)
        Issue.objects.bulk_update(
            issues,
            ["body_html", "free_html", "paid_html", "public_text", "word_count",
             "updated"],
        )  # fmt: skip
    # bulk_update skips Issue.save, which forgets this process's cached pages.
    if issues:
        pages.clear()
    return len(issues)
