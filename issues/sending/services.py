"""Publishing, scheduling and steering sends. The worker's loop is in delivery/."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Field, Max, Min, Q, QuerySet, Value, When
from django.utils import timezone

from issues.access import paid_subscribers_q
from issues.models import Issue, unknown_references_message
from issues.pagecache import pages
from issues.rendering import find_unknown_references
from subscribers.models import Subscriber

from .models import Delivery, EmailEvent, Send

logger = logging.getLogger(__name__)

# Audience rows are written in chunks of subscriber ids, each one INSERT ... SELECT.
FREEZE_CHUNK = 20_000


class SendingError(Exception):
    """A request the current state does not allow, with a message for the author."""


class UnknownReferencesError(SendingError):
    """The issue cites papers Quire does not know; readers would see broken cards."""

    def __init__(self, references: Iterable) -> None:
        self.references = [str(ref) for ref in references]
        super().__init__(unknown_references_message(self.references))


def check_publishable(*, issue: Issue) -> None:
    """Raise UnknownReferencesError if the issue's body names a paper that is missing.

    Read from the body as it is now (one parse, one query), not from the stored
    list, so a paper added or deleted a moment ago counts.
    """
    unknown = find_unknown_references(issue.body)
    if unknown:
        raise UnknownReferencesError(unknown)


def audience() -> QuerySet[Subscriber]:
    """Return who receives an issue published now."""
    return Subscriber.objects.receiving()


def audience_counts() -> dict[str, int]:
    """Return how many subscribers would get an issue now: total, free and paid."""
    receiving = audience()
    total = receiving.count()
    paid = receiving.filter(paid_subscribers_q()).count()
    return {"total": total, "paid": paid, "free": total - paid}


@transaction.atomic
def publish_issue(*, issue: Issue, now: datetime | None = None) -> Send | None:
    """Publish the issue and start its send, at most once however often it is called.

    Refused (UnknownReferencesError) while the body names a paper that is missing.
    An issue that was unpublished goes back on the site only: nobody is emailed a
    second time. Returns the issue's Send (None for one that was never emailed,
    such as demo content).

    The issue row is locked first, so two publishers (two tabs, the admin and the
    command line) queue behind each other; the unique Send per issue is the backstop.
    """
    from . import tasks

    now = now or timezone.now()
    issue = Issue.objects.select_for_update().get(pk=issue.pk)
    send = Send.objects.filter(issue=issue).first()
    if send is not None and issue.status == Issue.Status.PUBLISHED:
        return send
    check_publishable(issue=issue)
    if send is None and issue.status != Issue.Status.UNPUBLISHED:
        send, created = Send.objects.get_or_create(issue=issue)
        if created:
            tasks.start_send.delay_on_commit(send.pk)
    # update(), not save(): publishing must not re-render or touch other fields.
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.PUBLISHED,
        published_at=issue.published_at or now,
        publish_error="",
        publish_error_at=None,
        updated=now,
    )
    return send


@transaction.atomic
def schedule_issue(*, issue: Issue, publish_at: datetime) -> Issue:
    """Schedule the issue to be published (and sent) at publish_at."""
    issue = Issue.objects.select_for_update().get(pk=issue.pk)
    if Send.objects.filter(issue=issue).exists() or issue.status in (
        Issue.Status.PUBLISHED,
        Issue.Status.UNPUBLISHED,
    ):
        raise SendingError(
            "This issue has already been published; it cannot be scheduled."
        )
    check_publishable(issue=issue)
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.SCHEDULED,
        publish_at=publish_at,
        publish_error="",
        publish_error_at=None,
        updated=timezone.now(),
    )
    issue.refresh_from_db()
    return issue


@transaction.atomic
def unschedule_issue(*, issue: Issue) -> Issue:
    """Turn a scheduled issue back into a draft."""
    if not Issue.objects.filter(pk=issue.pk, status=Issue.Status.SCHEDULED).update(
        status=Issue.Status.DRAFT,
        publish_error="",
        publish_error_at=None,
        updated=timezone.now(),
    ):
        raise SendingError("This issue is not scheduled (any more).")
    issue.refresh_from_db()
    return issue


@transaction.atomic
def unpublish_issue(*, issue: Issue) -> Issue:
    """Take a published issue off the site, keeping its send and delivery history.

    A send still going out is paused: its emails would link to a page that is gone.
    """
    issue = Issue.objects.select_for_update().get(pk=issue.pk)
    if issue.status != Issue.Status.PUBLISHED:
        raise SendingError("This issue is not published (any more).")
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.UNPUBLISHED, updated=timezone.now()
    )
    Send.objects.filter(issue=issue, status=Send.Status.SENDING).update(
        status=Send.Status.PAUSED
    )
    # Cached pages of this process go at once; other processes recheck within
    # QUIRE_PAGE_RECHECK_SECONDS (see issues.pagecache).
    transaction.on_commit(pages.clear)
    issue.refresh_from_db()
    return issue


def publish_due_issues(*, now: datetime | None = None) -> list[Send]:
    """Publish every scheduled issue whose time has come; return the new sends.

    An issue that cannot go out stays scheduled with the reason stored on it for the
    author; it is tried again at every run, and the others go out regardless.
    """
    now = now or timezone.now()
    due = Issue.objects.filter(
        status=Issue.Status.SCHEDULED, publish_at__lte=now
    ).order_by("publish_at")
    sends = []
    for issue in due.only("pk", "title", "publish_error"):
        try:
            send = publish_issue(issue=issue, now=now)
        except SendingError as exc:
            flag_publish_error(issue=issue, error=str(exc), now=now)
            continue
        if send is not None:
            sends.append(send)
    return sends


def flag_publish_error(*, issue: Issue, error: str, now: datetime) -> None:
    """Store why a scheduled issue did not go out, logging it once per reason."""
    if issue.publish_error == error:
        return  # already flagged; beat retries every 30 s, the log says it once
    Issue.objects.filter(pk=issue.pk).update(publish_error=error, publish_error_at=now)
    logger.warning(
        "Scheduled issue %s (“%s”) not published: %s", issue.pk, issue, error
    )


def freeze_audience(*, send: Send) -> int:
    """Write one queued Delivery per current recipient, set-based, and start sending.

    Runs once: the send leaves "preparing" in the same transaction. Someone who joins
    afterwards does not get this issue.
    """
    with transaction.atomic():
        send = Send.objects.select_for_update().get(pk=send.pk)
        if send.status != Send.Status.PREPARING:
            return 0
        bounds = audience().aggregate(low=Min("pk"), high=Max("pk"))
        if bounds["low"] is not None:
            low = bounds["low"]
            while low <= bounds["high"]:
                _insert_deliveries(send, low, low + FREEZE_CHUNK)
                low += FREEZE_CHUNK
        total = Delivery.objects.filter(send=send).count()
        now = timezone.now()
        Send.objects.filter(pk=send.pk).update(
            status=Send.Status.SENDING if total else Send.Status.DONE,
            total=total,
            started_at=now,
            finished_at=None if total else now,
            heartbeat_at=now,
        )
    return total


def _insert_deliveries(send: Send, low: int, high: int) -> None:
    """INSERT INTO delivery ... SELECT from the audience with ids in [low, high)."""
    rows = (
        audience()
        .filter(pk__gte=low, pk__lt=high)
        .annotate(
            _send=Value(send.pk),
            _segment=Case(
                When(paid_subscribers_q(), then=Value(Delivery.Segment.PAID)),
                default=Value(Delivery.Segment.FREE),
            ),
            _status=Value(Delivery.Status.QUEUED),
            _zero=Value(0),
            _blank=Value(""),
            _false=Value(False),
        )
        .values_list(
            "_send", "pk", "email", "_segment", "_status", "_zero", "_blank",
            "_blank", "_blank", "_false", "_zero",
        )
        .order_by()
    )  # fmt: skip
    select_sql, params = rows.query.sql_with_params()
    table = connection.ops.quote_name(Delivery._meta.db_table)
    columns = ", ".join(
        # Concrete fields: each has a column (Optional only in the stubs).
        connection.ops.quote_name(
            cast(str, cast(Field, Delivery._meta.get_field(name)).column)
        )
        for name in (
            "send", "subscriber", "email", "segment", "status", "attempts",
            "last_error", "message_id", "claimed_by", "possibly_duplicate",
            "crashes",
        )
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) {select_sql}", params)  # noqa: S608


@transaction.atomic
def pause_send(*, send: Send, reason: str = "") -> Send:
    """Stop handing out more emails of this send until it is resumed.

    reason: why Quire itself paused it (shown to the author and by /healthz); also
    recorded on a send the author had paused already.
    """
    if reason:
        Send.objects.filter(
            pk=send.pk, status__in=[Send.Status.SENDING, Send.Status.PAUSED]
        ).update(status=Send.Status.PAUSED, paused_reason=reason[:2000])
    else:
        Send.objects.filter(pk=send.pk, status=Send.Status.SENDING).update(
            status=Send.Status.PAUSED
        )
    send.refresh_from_db()
    return send


@transaction.atomic
def resume_send(*, send: Send) -> Send:
    """Resume a paused send, forgetting why Quire paused it (it may be fixed now).

    Should the same content still stop workers, the guard pauses it again after
    SENDING_MAX_WORKER_CRASHES more tries.
    """
    if Send.objects.filter(pk=send.pk, status=Send.Status.PAUSED).update(
        status=Send.Status.SENDING,
        heartbeat_at=timezone.now(),
        paused_reason="",
        render_attempts=0,
    ):
        kick_send(send_id=send.pk)
    send.refresh_from_db()
    return send


@transaction.atomic
def retry_failed(*, send: Send) -> int:
    """Queue the failed deliveries of a send again; return how many."""
    retried = Delivery.objects.filter(send=send, status=Delivery.Status.FAILED).update(
        status=Delivery.Status.QUEUED,
        attempts=0,
        crashes=0,
        next_attempt_at=None,
        claimed_by="",
        claimed_at=None,
    )
    if retried:
        Send.objects.filter(
            pk=send.pk, status__in=[Send.Status.DONE, Send.Status.FAILED]
        ).update(status=Send.Status.SENDING, finished_at=None)
        send.refresh_from_db()
        if send.status == Send.Status.SENDING:
            kick_send(send_id=send.pk)
    refresh_counts(send_id=send.pk)
    return retried


def kick_send(*, send_id: int, count: int | None = None) -> None:
    """Enqueue batch tasks for a send (after commit); extra ones find nothing."""
    from . import tasks

    for _ in range(count or settings.SENDING_PARALLELISM):
        tasks.deliver_send.delay_on_commit(send_id)


def forget_recipients(*, subscribers: QuerySet[Subscriber], email: str) -> None:
    """Erase an address from the send history ("delete me"), keeping the counts."""
    Delivery.objects.filter(subscriber__in=subscribers).update(email="")
    EmailEvent.objects.filter(email__iexact=email).delete()


def refresh_counts(*, send_id: int) -> dict[str, int]:
    """Store the send's counters from its deliveries (one grouped query)."""
    counts = Delivery.objects.filter(send_id=send_id).counts()
    Send.objects.filter(pk=send_id).update(
        sent_count=counts[Delivery.Status.SENT],
        failed_count=counts[Delivery.Status.FAILED],
        bounced_count=counts[Delivery.Status.BOUNCED],
        skipped_count=counts[Delivery.Status.SKIPPED],
        resolved_after_crash=Delivery.objects.filter(
            send_id=send_id, possibly_duplicate=True
        ).count(),
    )
    return counts


def finish_send_if_complete(*, send_id: int) -> bool:
    """Mark the send done when no delivery is queued or sending; return if done."""
    with transaction.atomic():
        if Delivery.objects.filter(send_id=send_id).unresolved().exists():
            return False
        done = Send.objects.filter(pk=send_id, status=Send.Status.SENDING).update(
            status=Send.Status.DONE, finished_at=timezone.now()
        )
    refresh_counts(send_id=send_id)
    return bool(done)


def reconcile_sends(*, now: datetime | None = None) -> dict[str, int]:
    """Recover work no live worker holds; return what was done.

    - a send stuck in "preparing" (its start task was lost) is started again;
    - queued rows held by a worker whose lease ran out are freed;
    - rows left "sending" by a dead worker are queued again and flagged: the mail
      server may have received them, so those recipients may get the issue twice;
    - a sending send with work nobody is doing (lost broker messages, a flushed
      Redis) gets new batch tasks; one with nothing left is marked done.
    """
    from . import tasks

    now = now or timezone.now()
    lease = timedelta(seconds=settings.SENDING_LEASE_SECONDS)
    expired = Q(claimed_at__lt=now - lease) | Q(claimed_at__isnull=True)
    result = {
        "started": 0,
        "freed": 0,
        "resolved": 0,
        "failed_after_crashes": 0,
        "kicked": 0,
        "finished": 0,
    }
    stale_preparing = Send.objects.filter(
        status=Send.Status.PREPARING, created__lt=now - timedelta(seconds=60)
    )
    for send_id in stale_preparing.values_list("pk", flat=True):
        tasks.start_send.delay(send_id)
        result["started"] += 1
    for send in Send.objects.filter(
        status__in=[Send.Status.SENDING, Send.Status.PAUSED]
    ):
        with transaction.atomic():
            result["freed"] += (
                Delivery.objects.filter(send=send, status=Delivery.Status.QUEUED)
                .exclude(claimed_by="")
                .filter(expired)
                .update(claimed_by="", claimed_at=None)
            )
            dead = Delivery.objects.filter(
                send=send, status=Delivery.Status.SENDING
            ).filter(expired)
            # A row that every worker dies on (each time it is sent) would loop
            # for ever: after SENDING_MAX_WORKER_CRASHES it fails, and the send
            # pauses in case it is not only this recipient.
            poisoned = dead.filter(crashes__gte=settings.SENDING_MAX_WORKER_CRASHES - 1)
            poisoned_emails = list(poisoned.values_list("email", flat=True)[:3])
            failed = poisoned.update(
                status=Delivery.Status.FAILED,
                crashes=F("crashes") + 1,
                claimed_by="",
                claimed_at=None,
                next_attempt_at=None,
                possibly_duplicate=True,
                last_error=f"A worker stopped each time this email was being sent "
                f"({settings.SENDING_MAX_WORKER_CRASHES} times), so it is not sent "
                "again; it may have arrived. Retry failed to send it once more.",
            )
            resolved = dead.update(
                status=Delivery.Status.QUEUED,
                crashes=F("crashes") + 1,
                claimed_by="",
                claimed_at=None,
                next_attempt_at=None,
                possibly_duplicate=True,
                last_error="A worker stopped while sending this email; sent "
                "again, it may have arrived twice.",
            )
            result["resolved"] += resolved
            result["failed_after_crashes"] += failed
        if resolved or failed:
            refresh_counts(send_id=send.pk)
        if failed:
            pause_send(send=send, reason=_poisoned_reason(poisoned_emails, failed))
            continue
        if send.status != Send.Status.SENDING:
            continue
        if finish_send_if_complete(send_id=send.pk):
            result["finished"] += 1
            continue
        stalled = send.heartbeat_at is None or send.heartbeat_at < now - timedelta(
            seconds=min(60, settings.SENDING_LEASE_SECONDS)
        )
        if resolved or stalled:
            kick_send(send_id=send.pk)
            result["kicked"] += 1
    return result


def _poisoned_reason(emails: list[str], count: int) -> str:
    # An erased subscriber's row keeps no address.
    shown = [email or "an erased address" for email in emails]
    who = ", ".join(shown) + (f" and {count - len(shown)} more" if count > 3 else "")
    return (
        f"Sending to {who} stopped the worker "
        f"{settings.SENDING_MAX_WORKER_CRASHES} times, so "
        f"{'that email is' if count == 1 else 'those emails are'} marked failed "
        "and not sent again. Resume to send the rest."
    )


def start_send(*, send_id: int) -> None:
    """Freeze the send's audience, render its email once, then start batch tasks."""
    from . import delivery

    freeze_audience(send=Send(pk=send_id))
    prepared = delivery.prepare_send(send_id=send_id)
    if prepared.state in (delivery.READY, delivery.BUSY):
        kick_send(send_id=send_id)


def send_test_email(
    *, issue: Issue, emails: Iterable[str], segment: str = Delivery.Segment.PAID
) -> int:
    """Email the rendered issue, marked as a test, to these addresses only."""
    from .emails import Recipient, render_segment
    from .transports import SENT, open_transport

    prepared = render_segment(issue=issue, segment=segment, test=True)
    sent = 0
    errors = []
    with open_transport() as transport:
        for address in emails:
            outcome = transport.send(
                prepared,
                Recipient(
                    email=address,
                    token="test",  # noqa: S106 - not a secret
                    message_id=f"quire.test.{issue.pk}.{timezone.now():%Y%m%d%H%M%S%f}"
                    f"@{prepared.message_domain}",
                ),
            )
            if outcome.kind == SENT:
                sent += 1
            else:
                errors.append(f"{address}: {outcome.error}")
    if errors:
        raise SendingError("Test email not sent to " + "; ".join(errors))
    return sent
