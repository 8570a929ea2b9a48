"""Search over issues and papers: PostgreSQL full-text search, or a simple
word-by-word match elsewhere (SQLite). Only free content is searched."""

from __future__ import annotations

import html
import re

from django.contrib.postgres.search import (
    SearchHeadline,
    SearchQuery,
    SearchRank,
    SearchVector,
)
from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from .models import Issue, Paper

MAX_QUERY_LENGTH = 200
# Markers PostgreSQL puts around matches; replaced by <mark> after escaping.
START, STOP = "\x02", "\x03"


def clean_query(q: str) -> str:
    """Return the query trimmed to a sensible length, whitespace collapsed."""
    return " ".join((q or "").split())[:MAX_QUERY_LENGTH]


def _uses_postgres() -> bool:
    return connection.vendor == "postgresql"


def search_issues(issues: QuerySet[Issue], q: str) -> QuerySet[Issue]:
    """Return these issues matching q, best first, with a `snippet` attribute."""
    if _uses_postgres():
        query = SearchQuery(q, search_type="websearch", config="english")
        vector = (
            SearchVector("title", weight="A", config="english")
            + SearchVector("subtitle", weight="B", config="english")
            + SearchVector("public_text", weight="C", config="english")
        )
        return (
            issues.annotate(document=vector)
            .filter(document=query)
            .annotate(rank=SearchRank(vector, query))
            .annotate(
                snippet=SearchHeadline(
                    "public_text", query, config="english",
                    start_sel=START, stop_sel=STOP, max_words=30,
                    min_words=15,
                )
            )
            .order_by("-rank", "-published_at")
        )  # fmt: skip
    condition = Q()
    for word in q.split():
        condition &= (
            Q(title__icontains=word)
            | Q(subtitle__icontains=word)
            | Q(public_text__icontains=word)
        )
    return issues.filter(condition).order_by("-published_at")


def search_papers(papers: QuerySet[Paper], q: str) -> QuerySet[Paper]:
    """Return papers matching q by title, authors, arXiv id, DOI, venue or summary."""
    papers = papers.annotate(authors_text=Cast("authors", TextField()))
    if _uses_postgres():
        query = SearchQuery(q, search_type="websearch", config="english")
        vector = (
            SearchVector("title", weight="A", config="english")
            + SearchVector("authors_text", weight="B", config="simple")
            + SearchVector("summary", weight="C", config="english")
        )
        exact = Q(arxiv_id__iexact=q) | Q(doi__iexact=q)
        return (
            papers.annotate(document=vector, rank=SearchRank(vector, query))
            .filter(Q(document=query) | exact)
            .order_by("-rank", "-year")
        )
    condition = Q()
    for word in q.split():
        condition &= (
            Q(title__icontains=word)
            | Q(authors_text__icontains=word)
            | Q(arxiv_id__icontains=word)
            | Q(doi__iexact=word)
            | Q(venue__icontains=word)
            | Q(summary__icontains=word)
        )
    return papers.filter(condition)


def snippet_html(issue: Issue, q: str, *, words: int = 30) -> str:
    """Return escaped HTML of the issue's free text around q, matches in <mark>."""
    raw = getattr(issue, "snippet", None)
    if raw is None:
        text = issue.public_text
        terms = [re.escape(w) for w in q.split() if w]
        match = re.search("|".join(terms), text, re.I) if terms else None
        start = max(0, match.start() - 80) if match else 0
        if start:
            # Begin at the start of the word that position falls in, not inside it.
            start = text.rfind(" ", 0, start) + 1
        raw = text[start:].split()
        raw = ("… " if start else "") + " ".join(raw[:words])
        if terms:
            raw = re.sub(f"({'|'.join(terms)})", f"{START}\\1{STOP}", raw, flags=re.I)
    escaped = html.escape(raw)
    return escaped.replace(START, "<mark>").replace(STOP, "</mark>")
