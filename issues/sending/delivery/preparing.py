"""Preparing a send: its audience frozen (audience.py), then its emails rendered once
per send, stored, and loaded by every batch task.

Rendering runs native code (the CSS inliner) over the author's content, and some
content crashes it: the worker process dies, and Celery (acks_late) hands the same
task to the next process. When every batch task rendered for itself, one such body
killed workers in a tight loop while nothing was sent. So:

- one process at a time renders a send, under a lock the database (PostgreSQL's
  advisory locks) or the operating system (a file lock, SQLite being on one machine)
  drops the moment that process dies, so a dead renderer never blocks the next one;
- it counts the attempt on the Send, committed, before it starts, and resets the
  count once the rendering is stored: a count left raised means a worker died
  rendering; at SENDING_MAX_WORKER_CRASHES the send is paused with the reason
  instead of rendering again;
- the result is stored (RenderedEmail rows), so batch tasks in any process, on any
  machine, after any restart, only load it.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.db.models import F
from django.utils import timezone

from .. import emails
from ..emails import PreparedEmail
from ..models import Delivery, RenderedEmail, Send
from .audience import freeze_audience
from .bookkeeping import pause_send

logger = logging.getLogger(__name__)

READY, BUSY, PAUSED, STOPPED = "ready", "busy", "paused", "stopped"
# Namespaces the advisory lock (the other key is the send's id): "QUIR".
_LOCK_CLASS = 0x51554952
# Errors worth a Celery retry rather than a pause: the database or broker blinked.
_PASSING = (DatabaseError, InterfaceError, ConnectionError)


@dataclass
class Prepared:
    """The send's emails per segment (None unless ready), and why not."""

    state: str
    emails: dict[str, PreparedEmail] | None = None


def crash_reason(attempts: int) -> str:
    return (
        f"Rendering this issue's email stopped the worker {attempts} times (the "
        "body may be too large or too deeply nested for the CSS inliner), so "
        "nothing more is sent. Fix the issue and resume."
    )


def stored_emails(send: Send) -> tuple[dict[str, PreparedEmail] | None, bool]:
    """Return the send's stored emails and whether they match the issue as it is."""
    rows = list(RenderedEmail.objects.filter(send_id=send.pk))
    if {row.segment for row in rows} != set(Delivery.Segment.values):
        return None, False
    current = all(row.issue_updated == send.issue.updated for row in rows)
    return {
        row.segment: PreparedEmail.from_stored(
            segment=row.segment, html=row.html, text=row.text, headers=row.headers
        )
        for row in rows
    }, current


def start_send(*, send_id: int) -> bool:
    """Freeze the send's audience and render its email once; return if batch tasks
    should start (the caller queues them)."""
    freeze_audience(send=Send(pk=send_id))
    prepared = prepare_send(send_id=send_id)
    return prepared.state in (READY, BUSY)


def prepared_for(send: Send) -> Prepared:
    """Return the send's emails, rendering them first only if none are current.

    While another process renders an edited issue, the previous rendering is used;
    with none at all the caller waits (BUSY).
    """
    stored, current = stored_emails(send)
    if current:
        return Prepared(READY, stored)
    prepared = prepare_send(send_id=send.pk)
    if prepared.state == BUSY and stored is not None:
        return Prepared(READY, stored)
    return prepared


def prepare_send(*, send_id: int) -> Prepared:
    """Render the send's emails and store them, unless they are stored already."""
    with _render_lock(send_id) as mine:
        if not mine:
            return Prepared(BUSY)
        send = Send.objects.select_related("issue").get(pk=send_id)
        if send.status not in (Send.Status.SENDING, Send.Status.PREPARING):
            return Prepared(STOPPED)
        stored, current = stored_emails(send)
        if current:
            return Prepared(READY, stored)
        if not _count_attempt(send_id):
            return Prepared(PAUSED)
        try:
            rendered = emails.render_send(send.issue, send_id=send.pk)
        except _PASSING:
            _uncount_attempt(send_id)
            raise
        except Exception as exc:
            # A Python error while rendering happens again on every try: say so
            # on the send instead of failing each batch task.
            logger.exception("Rendering the email of send %s failed", send_id)
            _pause(
                send_id,
                f"Rendering this issue's email failed ({type(exc).__name__}: {exc}). "
                "Fix the issue and resume.",
            )
            return Prepared(PAUSED)
        _store(send, rendered)
        logger.info("Rendered the email of send %s (issue %s)", send_id, send.issue_id)
        return Prepared(READY, rendered)


def _count_attempt(send_id: int) -> bool:
    """Count a rendering about to start, committed; False if the send is paused."""
    with transaction.atomic():
        attempts = (
            Send.objects.select_for_update()
            .filter(pk=send_id)
            .values_list("render_attempts", flat=True)
            .get()
        )
        if attempts >= settings.SENDING_MAX_WORKER_CRASHES:
            _pause(send_id, crash_reason(attempts))
            return False
        Send.objects.filter(pk=send_id).update(render_attempts=F("render_attempts") + 1)
    return True


def _uncount_attempt(send_id: int) -> None:
    with suppress(*_PASSING):
        Send.objects.filter(pk=send_id, render_attempts__gt=0).update(
            render_attempts=F("render_attempts") - 1
        )


def _pause(send_id: int, reason: str) -> None:
    logger.error("Send %s paused: %s", send_id, reason)
    pause_send(send_id=send_id, reason=reason)


def _store(send: Send, rendered: dict[str, PreparedEmail]) -> None:
    now = timezone.now()
    with transaction.atomic():
        RenderedEmail.objects.filter(send_id=send.pk).delete()
        RenderedEmail.objects.bulk_create(
            RenderedEmail(
                send_id=send.pk,
                segment=segment,
                issue_updated=send.issue.updated,
                rendered_at=now,
                html=email.html,
                text=email.text,
                headers=email.stored_headers(),
            )
            for segment, email in rendered.items()
        )
        Send.objects.filter(pk=send.pk).update(render_attempts=0)


@contextmanager
def _render_lock(send_id: int) -> Iterator[bool]:
    """Hold the send's rendering lock if no other live process does; yield if so."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s::int4, %s::int4)",
                [_LOCK_CLASS, send_id],
            )
            mine = cursor.fetchone()[0]
        try:
            yield mine
        finally:
            if mine:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s::int4, %s::int4)",
                        [_LOCK_CLASS, send_id],
                    )
        return
    folder = settings.VAR_DIR / "sending"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"render-{send_id}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
