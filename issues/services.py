"""Writes on content: recording citations, refreshing the issues that show a paper,
deleting papers, rendering stored HTML again.

The admin and the commands call these after saving (Issue.save and Paper.save only
render their own row). Writes here that skip save() raise the content version
themselves (content_changed), so that cached reader pages go.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from .content_version import content_changed
from .models import Citation, Issue, Paper
from .rendering import (
    Reference,
    RenderedBody,
    find_references,
    paper_keys,
    render_markdown,
    resolve_references,
    split_paywall,
)

# What Issue.render() fills in from the body.
RENDERED_ISSUE_FIELDS = [
    "body_html", "free_html", "paid_html", "public_text", "word_count",
    "unknown_references", "headings",
]  # fmt: skip


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
    # bulk_create and bulk_update send no signals.
    content_changed()
    Citation.objects.bulk_create([c for c in ordered if c.pk is None])
    Citation.objects.bulk_update(
        [
            c
            for c in ordered
            if c.pk in stored and stored[c.pk] != (c.position, c.in_paid_part)
        ],
        ["position", "in_paid_part"],
    )
    # Counted here, once, for the issue's card ("3 papers"): listings read it.
    if issue.paper_count != len(ordered):
        issue.paper_count = len(ordered)
        Issue.objects.filter(pk=issue.pk).update(paper_count=len(ordered))


def rerender_citing_issues(*, paper: Paper) -> int:
    """Re-render every issue that cites or references this paper, just added or
    edited, so its card shows as it is now; return how many."""
    return _rerender_issues_naming(paper_id=paper.pk, keys=paper_keys(paper))


@transaction.atomic
def delete_papers(*, papers: QuerySet[Paper]) -> int:
    """Delete the papers and take their cards out of the issues that cited them;
    return how many papers went."""
    gone = [(paper.pk, paper_keys(paper)) for paper in papers]
    citing = list(
        Citation.objects.filter(paper__in=papers)
        .values_list("issue_id", flat=True)
        .distinct()
    )
    papers.delete()
    for paper_id, keys in gone:
        _rerender_issues_naming(paper_id=paper_id, keys=keys)
    # An issue that cited a paper only by hand is not re-rendered above.
    count_papers(issue_ids=citing)
    return len(gone)


def count_papers(*, issue_ids: list[int]) -> None:
    """Store again how many papers each of these issues cites (one UPDATE)."""
    if not issue_ids:
        return
    cited = (
        Citation.objects.filter(issue_id=OuterRef("pk"))
        .order_by()
        .values("issue_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Issue.objects.filter(pk__in=issue_ids).update(
        paper_count=Coalesce(Subquery(cited), 0)
    )


def _rerender_issues_naming(*, paper_id: int, keys: list[Reference]) -> int:
    """Re-render the issues that cite the paper or reference it by one of keys."""
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
        Issue.objects.bulk_update(issues, [*RENDERED_ISSUE_FIELDS, "updated"])
        if issues:
            content_changed()
    return len(issues)


@dataclass(frozen=True)
class Rerendered:
    issues: int
    issues_changed: int
    papers: int
    papers_changed: int


def _chunks(queryset, size: int):
    """Yield lists of rows in primary-key order, one query per chunk."""
    last = None
    while True:
        rows = queryset.order_by("pk")
        if last is not None:
            rows = rows.filter(pk__gt=last)
        rows = list(rows[:size])
        if not rows:
            return
        yield rows
        last = rows[-1].pk


def _rerender_issue_chunk(issues: list[Issue]) -> list[Issue]:
    """Render a chunk of issues with one paper lookup; return those that changed."""
    references = set()
    for issue in issues:
        free_md, paid_md = split_paywall(issue.body)
        references.update(find_references(free_md))
        references.update(find_references(paid_md or ""))
    papers = resolve_references(references)
    changed = []
    for issue in issues:
        before = [getattr(issue, name) for name in RENDERED_ISSUE_FIELDS]
        issue.render(papers=papers)
        if before != [getattr(issue, name) for name in RENDERED_ISSUE_FIELDS]:
            changed.append(issue)
    return changed


def rerender_stored_html(*, chunk_size: int = 200) -> Rerendered:
    """Render every issue body and paper summary again, storing what changed.

    For HTML stored by an older version (absolute links to an earlier address, a
    renderer since improved). Rows are written in bulk, chunk by chunk, without
    save(): citations and "updated" stay as they are, since the Markdown, and so
    what readers see, has not changed.
    """
    issues = changed_issues = 0
    fields = ["pk", "body", "access", *RENDERED_ISSUE_FIELDS]
    for chunk in _chunks(Issue.objects.only(*fields), chunk_size):
        with transaction.atomic():
            changed = _rerender_issue_chunk(chunk)
            Issue.objects.bulk_update(changed, RENDERED_ISSUE_FIELDS)
            if changed:
                content_changed()
        issues += len(chunk)
        changed_issues += len(changed)
    papers = changed_papers = 0
    for chunk in _chunks(
        Paper.objects.only("pk", "summary", "summary_html"), chunk_size
    ):
        edited: list[Paper] = []
        for paper in chunk:
            html = render_markdown(paper.summary, papers={})
            if html != paper.summary_html:
                paper.summary_html = html
                edited.append(paper)
        Paper.objects.bulk_update(edited, ["summary_html"])
        if edited:
            # After the rows' own commit: a page rendered in between is filed
            # under the old version and goes at this bump.
            content_changed()
        papers += len(chunk)
        changed_papers += len(edited)
    return Rerendered(issues, changed_issues, papers, changed_papers)
