"""The worker's bookkeeping of a send: counts, finishing, pausing, reconciling.

Nothing here enqueues: ``reconcile_sends`` returns which sends to start again and
which to give new batch tasks, and the reconcile task (tasks.py) queues them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ..models import Delivery, Send
from .clock import database_now


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


@transaction.atomic
def pause_send(*, send_id: int, reason: str = "") -> None:
    """Stop handing out more emails of this send until it is resumed.

    reason: why Quire itself paused it (shown to the author and by /healthz); also
    recorded on a send the author had paused already.
    """
    if reason:
        Send.objects.filter(
            pk=send_id, status__in=[Send.Status.SENDING, Send.Status.PAUSED]
        ).update(status=Send.Status.PAUSED, paused_reason=reason[:2000])
    else:
        Send.objects.filter(pk=send_id, status=Send.Status.SENDING).update(
            status=Send.Status.PAUSED
        )


@dataclass
class Reconciled:
    """What the reconciler did, and what is left for the task to queue."""

    counts: dict[str, int]
    # Sends whose start task was lost: start them again.
    start: list[int] = field(default_factory=list)
    # Sends with work nobody is doing: give them new batch tasks.
    kick: list[int] = field(default_factory=list)


def reconcile_sends(*, now: datetime | None = None) -> Reconciled:
    """Recover work no live worker holds; return what was done and what to queue.

    - a send stuck in "preparing" (its start task was lost) is to be started again;
    - queued rows held by a worker whose lease ran out are freed;
    - rows left "sending" by a dead worker are queued again and flagged: the mail
      server may have received them, so those recipients may get the issue twice;
    - a sending send with work nobody is doing (lost broker messages, a flushed
      Redis) is to get new batch tasks; one with nothing left is marked done.
    """
    # The database's clock, which wrote every lease, whichever host's worker held it.
    now = now or database_now()
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
    todo = Reconciled(result)
    stale_preparing = Send.objects.filter(
        status=Send.Status.PREPARING, created__lt=now - timedelta(seconds=60)
    )
    for send_id in stale_preparing.values_list("pk", flat=True):
        todo.start.append(send_id)
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
            pause_send(
                send_id=send.pk, reason=_poisoned_reason(poisoned_emails, failed)
            )
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
            todo.kick.append(send.pk)
            result["kicked"] += 1
    return todo


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
