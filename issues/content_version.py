"""The one content version every cached reader page belongs to, as this process
knows it: read from the database at most once per QUIRE_PAGE_RECHECK_SECONDS.

The version names the ContentVersion row's number (raised in the same transaction
as any change to issues, papers, tags, citations or the publication) and the next
time an issue becomes visible by the clock alone (published, with a publish time
still to come): once that time passes the version is read again, and, since the
next such time has moved on, every page is rendered anew.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from newsletter.models import ContentVersion
from newsletter.services import bump_content_version

from .models import Issue
from .pagecache import recheck_seconds


class _Known:
    """What this process last read: the version and when to read it again."""

    def __init__(self) -> None:
        self.version = ""
        self.checked = float("-inf")  # time.monotonic() of the last read
        self.next_change: float | None = None  # time.time() of the next publish
        self.lock = threading.Lock()

    def fresh(self, now: float) -> bool:
        return now - self.checked < recheck_seconds() and (
            self.next_change is None or time.time() < self.next_change
        )


_known = _Known()


def current() -> str:
    """Return the content version; no query within the recheck interval."""
    known = _known
    if known.fresh(time.monotonic()):
        return known.version
    with known.lock:
        now = time.monotonic()
        if not known.fresh(now):
            number, next_publish = _read()
            known.version = (
                f"{number}:{next_publish.timestamp() if next_publish else ''}"
            )
            known.next_change = next_publish.timestamp() if next_publish else None
            known.checked = now
        return known.version


def _read() -> tuple[int, datetime | None]:
    """Return the stored number and the next publish time to come, in one query."""
    upcoming = Issue.objects.filter(
        status=Issue.Status.PUBLISHED, published_at__gt=timezone.now()
    ).order_by("published_at")
    row = (
        ContentVersion.objects.filter(pk=1)
        .annotate(next_publish=Subquery(upcoming.values("published_at")[:1]))
        .values_list("version", "next_publish")
        .first()
    )
    if row is None:
        # No row (a flushed test database): the next publish still counts.
        return 0, upcoming.values_list("published_at", flat=True).first()
    return row


def forget() -> None:
    """Make this process read the version again at its next page."""
    _known.checked = float("-inf")


def content_changed() -> None:
    """Record, in the current transaction, a change readers could see.

    Every server process drops its cached pages within the recheck interval; this
    one at once, once the change is committed.
    """
    bump_content_version()
    # Now, for this connection's own reads (it sees its change before the
    # commit), and again at the commit, for every other thread's.
    forget()
    transaction.on_commit(forget)
