"""arXiv's latest version of each paper, checked by beat a batch at a time.

Polite to arXiv: many ids per request (ARXIV_BATCH_SIZE), one request per
ARXIV_MIN_INTERVAL seconds shared with every other arXiv call (paper_metadata's
pace), at most ARXIV_CHECK_BATCHES requests per run, and each paper at most once
every ARXIV_RECHECK_DAYS. The papers least recently checked go first. A paper page
then notes when arXiv has a newer version than the one its arXiv id names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .content_version import content_changed
from .models import Paper
from .paper_metadata import ApiBusy, ApiUnreachable, PaperLookupError, arxiv
from .paper_metadata.pacing import Pace

logger = logging.getLogger(__name__)

# A beat run may wait this long for each of its turns at arXiv (an author's lookup
# waits at most PAPER_LOOKUP_MAX_WAIT).
CHECK_MAX_WAIT = 60.0


@dataclass(frozen=True)
class VersionCheck:
    checked: int  # papers asked about
    newer: int  # papers whose latest version changed
    error: str = ""  # why the run stopped early, if it did


def papers_due(*, now: datetime) -> QuerySet[Paper]:
    """Return the papers with an arXiv id not checked in ARXIV_RECHECK_DAYS."""
    since = now - timedelta(days=settings.ARXIV_RECHECK_DAYS)
    return (
        Paper.objects.exclude(arxiv_id="")
        .filter(Q(arxiv_checked_at__isnull=True) | Q(arxiv_checked_at__lt=since))
        .order_by(F("arxiv_checked_at").asc(nulls_first=True), "pk")
    )


def check_arxiv_versions(
    *, now: datetime | None = None, pace: Pace | None = None
) -> VersionCheck:
    """Ask arXiv for the latest version of the papers due; store what it says."""
    now = now or timezone.now()
    size = settings.ARXIV_BATCH_SIZE
    due = list(
        papers_due(now=now).only("pk", "arxiv_id", "arxiv_latest_version")[
            : size * settings.ARXIV_CHECK_BATCHES
        ]
    )
    if pace is None:
        pace = arxiv.pace()
        pace.max_wait = max(pace.max_wait, CHECK_MAX_WAIT)
    checked = newer = 0
    for start in range(0, len(due), size):
        batch = due[start : start + size]
        try:
            found = arxiv.fetch([p.arxiv_id for p in batch], pace_=pace)
        except (ApiBusy, ApiUnreachable) as exc:
            # The rest waits for the next run; arXiv's Retry-After is kept by pace.
            logger.warning("arXiv version check stopped: %s", exc)
            return VersionCheck(checked, newer, str(exc))
        except PaperLookupError as exc:
            # arXiv refused the batch (an id it calls malformed): checked all the
            # same, or the same batch would be refused every run.
            logger.warning("arXiv refused a version check batch: %s", exc)
            found = {}
        newer += _record(batch, found, now=now)
        checked += len(batch)
    return VersionCheck(checked, newer)


@transaction.atomic
def _record(batch: list[Paper], found: dict, *, now: datetime) -> int:
    changed = 0
    for paper in batch:
        details = found.get(arxiv.bare_id(paper.arxiv_id))
        # A paper arXiv does not know is checked all the same: asked again next
        # time round, not every run.
        if details is not None and details.arxiv_version != paper.arxiv_latest_version:
            paper.arxiv_latest_version = details.arxiv_version
            changed += 1
        paper.arxiv_checked_at = now
    Paper.objects.bulk_update(batch, ["arxiv_latest_version", "arxiv_checked_at"])
    if changed:
        # bulk_update sends no signal: paper pages cached before show no note.
        content_changed()
    return changed
