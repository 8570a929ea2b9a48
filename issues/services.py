"""Writes on content: recording citations, refreshing rendered issues."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Citation, Issue, Paper
from .pagecache import pages
from .rendering import Reference, RenderedBody, paper_keys


@transaction.atomic
def record_citations(*, issue: Issue, rendered: RenderedBody | None = None) -> None:
    """Add a citation for every paper the body references, in order of appearance.

    Citations added by hand (with a note or rank) are kept; a citation whose
    reference left the body stays until the author removes it from the list.
    """
    if rendered is None:
        rendered = issue.render()
    existing = {c.paper_id: c for c in issue.citations.all()}
    position = max((c.position for c in existing.values()), default=0)
    free_refs = set(rendered.free_references)
    to_create, to_update, seen = [], [], set()
    for ref in rendered.references:
        paper = rendered.papers.get(ref)
        if paper is None or paper.pk in seen:
            continue
        seen.add(paper.pk)
        in_paid_part = not any(key in free_refs for key in paper_keys(paper))
        citation = existing.get(paper.pk)
        if citation is None:
            position += 1
            to_create.append(
                Citation(
                    issue=issue,
                    paper=paper,
                    position=position,
                    in_paid_part=in_paid_part,
                )
            )
        elif citation.in_paid_part != in_paid_part:
            citation.in_paid_part = in_paid_part
            to_update.append(citation)
    Citation.objects.bulk_create(to_create)
    Citation.objects.bulk_update(to_update, ["in_paid_part"])


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
             "unknown_references", "updated"],
        )  # fmt: skip
    # bulk_update skips Issue.save, which forgets this process's cached pages.
    if issues:
        pages.clear()
    return len(issues)
