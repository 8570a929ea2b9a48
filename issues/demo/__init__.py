"""Demo content for a monthly machine-learning research newsletter (seed_demo).

The content lives beside this module as data: ``demo.json`` holds the publication,
tags, papers, issues and ranked citations; each issue's Markdown body is
``issues/<slug>.md``.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from newsletter.models import Publication

from ..models import Citation, Issue, Paper, Tag
from ..services import record_citations, rerender_citing_issues

DEMO_DIR = Path(__file__).resolve().parent


@cache
def demo_data() -> dict[str, Any]:
    """Return the demo content, each issue with its Markdown body read in."""
    data = json.loads((DEMO_DIR / "demo.json").read_text(encoding="utf-8"))
    for issue in data["issues"]:
        issue["body"] = (DEMO_DIR / "issues" / f"{issue['slug']}.md").read_text(
            encoding="utf-8"
        )
        published_at = issue["published_at"]
        issue["published_at"] = (
            datetime.fromisoformat(published_at) if published_at else None
        )
    return data


def load_demo() -> dict[str, int]:
    """Create or update the demo publication, tags, papers and issues."""
    data = demo_data()
    publication = Publication.load()
    for name, value in data["publication"].items():
        setattr(publication, name, value)
    publication.save()

    tags = {}
    for slug, name in data["tags"].items():
        tags[slug], _ = Tag.objects.update_or_create(slug=slug, defaults={"name": name})

    papers = {}
    for item in data["papers"]:
        slug = item["slug"]
        paper = Paper.objects.filter(slug=slug).first() or Paper(slug=slug)
        paper.title, paper.authors, paper.year = (
            item["title"],
            item["authors"],
            item["year"],
        )
        paper.venue, paper.arxiv_id = item["venue"], item["arxiv_id"]
        paper.code_url, paper.summary = item["code_url"], item["summary"]
        paper.save()
        paper.tags.set([tags[t] for t in item["tags"]])
        rerender_citing_issues(paper=paper)
        papers[slug] = paper

    for item in data["issues"]:
        slug = item["slug"]
        issue = Issue.objects.filter(slug=slug).first() or Issue(slug=slug)
        issue.title, issue.subtitle, issue.body = (
            item["title"],
            item["subtitle"],
            item["body"],
        )
        issue.status, issue.access = item["status"], item["access"]
        issue.published_at = item["published_at"]
        issue.save()
        issue.tags.set([tags[t] for t in item["tags"]])
        record_citations(issue=issue)

    # A ranked list (the top papers of a year) cites its papers in rank order.
    for issue_slug, ranked in data["rankings"].items():
        issue = Issue.objects.get(slug=issue_slug)
        for rank, (paper_slug, note) in enumerate(ranked, start=1):
            Citation.objects.update_or_create(
                issue=issue,
                paper=papers[paper_slug],
                defaults={"rank": rank, "note": note, "position": rank},
            )
    return {
        "issues": len(data["issues"]),
        "papers": len(data["papers"]),
        "tags": len(data["tags"]),
    }
