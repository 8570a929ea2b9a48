"""A reader's paper library: the papers a signed-in subscriber saved.

Writes as services (save, remove), reads for pages (a subscriber's papers, which
of them a page shows, a version of the library for ETags), and the library's
part of a subscriber's data export and erasure (receivers of subscribers.signals,
connected in IssuesConfig.ready()).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, QuerySet

from subscribers.models import Subscriber

from .models import Paper, SavedPaper


def save_paper(*, subscriber: Subscriber, paper: Paper) -> SavedPaper:
    """Keep the paper in the subscriber's library, once however often it is saved."""
    try:
        with transaction.atomic():
            saved, _created = SavedPaper.objects.get_or_create(
                subscriber=subscriber, paper=paper
            )
    except IntegrityError:
        # Saved at the same moment by another request (two tabs, a double click).
        saved = SavedPaper.objects.get(subscriber=subscriber, paper=paper)
    return saved


def remove_paper(*, subscriber: Subscriber, paper: Paper) -> bool:
    """Take the paper out of the subscriber's library; return whether it was in."""
    deleted, _ = SavedPaper.objects.filter(subscriber=subscriber, paper=paper).delete()
    return bool(deleted)


def saved_papers(subscriber: Subscriber) -> QuerySet[Paper]:
    """Return the subscriber's saved papers, the latest saved first."""
    return (
        Paper.objects.filter(saves__subscriber=subscriber)
        .defer("summary", "summary_html")
        .order_by("-saves__saved_at", "-saves__pk")
    )


def saved_paper_ids(subscriber: Subscriber) -> frozenset[int]:
    """Return the ids of every paper the subscriber saved (one query)."""
    return frozenset(
        SavedPaper.objects.filter(subscriber=subscriber).values_list(
            "paper_id", flat=True
        )
    )


def library_version(subscriber: Subscriber | None) -> str:
    """Return a string that changes whenever the subscriber's library does.

    Part of the issue page's ETag: a page whose Save buttons show the library
    must not be revalidated from before a paper was saved or removed. Saving
    raises the latest time, removing lowers the count.
    """
    if subscriber is None:
        return ""
    figures = SavedPaper.objects.filter(subscriber=subscriber).aggregate(
        n=Count("pk"), latest=Max("saved_at")
    )
    latest = figures["latest"].isoformat() if figures["latest"] else ""
    return f"{figures['n']}@{latest}"


def export_saved_papers(sender, *, subscriber: Subscriber, **kwargs) -> dict:
    """Return the saved papers section of the subscriber's data export."""
    rows = (
        SavedPaper.objects.filter(subscriber=subscriber)
        .select_related("paper")
        .only("saved_at", "paper__title", "paper__slug", "paper__doi",
              "paper__arxiv_id", "paper__url")
    )  # fmt: skip
    return {
        "saved_papers": [
            {
                "title": row.paper.title,
                "slug": row.paper.slug,
                "doi": row.paper.doi,
                "arxiv_id": row.paper.arxiv_id,
                "url": row.paper.url,
                "saved_at": row.saved_at.isoformat(),
            }
            for row in rows
        ]
    }


def erase_saved_papers(sender, *, subscribers, **kwargs) -> None:
    """Delete the saved papers of the subscribers about to be erased."""
    SavedPaper.objects.filter(subscriber__in=subscribers).delete()
