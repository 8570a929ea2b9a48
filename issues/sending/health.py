"""The /healthz check of sending: sends that stopped making progress.

Registered with newsletter.health in SendingConfig.ready. A send is reported when
Quire paused it by itself (workers kept dying on it, or the deliverability guard
found too many complaints or hard bounces), or when it is sending with emails
still queued and nothing has been claimed or sent for SENDING_STALLED_MINUTES: the
workers are down, stuck, or the mail server has refused everything for that long.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .models import Delivery, Send


def _last_progress(send: Send) -> datetime | None:
    # One index lookup (send, sent_at): the newest sent email of this send.
    last_sent = (
        Delivery.objects.filter(send=send, sent_at__isnull=False)
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    moments = [m for m in (send.heartbeat_at, send.started_at, last_sent) if m]
    return max(moments) if moments else None


def paused_by_quire() -> QuerySet[Send]:
    """Return the sends Quire paused by itself (workers died on them, or the
    deliverability guard stopped them), each with its reason."""
    return Send.objects.filter(status=Send.Status.PAUSED).exclude(paused_reason="")


def stalled_sends(*, now: datetime | None = None, paused: bool = True) -> list[str]:
    """Return a sentence for each send that is not getting anywhere.

    paused: include the sends Quire paused by itself (the dashboard lists those
    with a link of their own).
    """
    now = now or timezone.now()
    window = timedelta(minutes=settings.SENDING_STALLED_MINUTES)
    problems = []
    if paused:
        for send in paused_by_quire().select_related("issue").order_by("pk"):
            problems.append(
                f"“{send.issue}” (send {send.pk}) is paused: {send.paused_reason}"
            )
    active = Send.objects.filter(
        status__in=[Send.Status.SENDING, Send.Status.PREPARING]
    ).select_related("issue")
    for send in active.order_by("pk"):
        if send.status == Send.Status.PREPARING:
            if send.created < now - window:
                minutes = int((now - send.created).total_seconds() // 60)
                problems.append(
                    f"“{send.issue}” (send {send.pk}) has been preparing for "
                    f"{minutes} minutes"
                )
            continue
        last = _last_progress(send)
        if last is not None and last >= now - window:
            continue
        queued = Delivery.objects.filter(send=send).unresolved().count()
        if not queued:
            continue  # the reconciler marks it done within a minute
        minutes = int((now - last).total_seconds() // 60) if last else None
        since = f"for {minutes} minutes" if minutes is not None else "at all"
        problems.append(
            f"“{send.issue}” (send {send.pk}) has sent nothing {since} with "
            f"{queued} emails still queued"
        )
    return problems


def check_sending() -> tuple[bool, str]:
    """Report (ok, detail) for /healthz: failing while any send is stuck."""
    problems = stalled_sends()
    if problems:
        return False, "; ".join(problems)
    active = Send.objects.filter(status=Send.Status.SENDING).count()
    return True, f"{active} send{'s' if active != 1 else ''} in progress"
