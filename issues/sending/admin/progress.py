"""The send's progress as the author sees it: the panel and its JSON endpoint."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from django.urls import reverse
from django.utils import timezone

from issues.models import Issue

from ..guard import Figures, Limits, percent
from ..models import Delivery, Send

# How far back the "current rate" looks.
RATE_WINDOW = 30
FAILURES_SHOWN = 50


def send_progress(send: Send, *, now=None) -> dict:
    """Return the live figures of a send for the panel and its JSON endpoint."""
    now = now or timezone.now()
    deliveries = Delivery.objects.filter(send=send)
    counts = deliveries.counts()
    handled = sum(
        counts[s]
        for s in (
            Delivery.Status.SENT,
            Delivery.Status.FAILED,
            Delivery.Status.BOUNCED,
            Delivery.Status.SKIPPED,
        )
    )
    total = send.total
    remaining = counts[Delivery.Status.QUEUED] + counts[Delivery.Status.SENDING]
    if send.status == Send.Status.SENDING:
        recent = deliveries.filter(
            sent_at__gte=now - timedelta(seconds=RATE_WINDOW)
        ).count()
        started = cast(datetime, send.started_at)  # a sending send has started
        elapsed = min(RATE_WINDOW, (now - started).total_seconds() or 1)
        rate = recent / max(elapsed, 1)
    elif send.started_at and send.finished_at:
        duration = (send.finished_at - send.started_at).total_seconds()
        rate = counts[Delivery.Status.SENT] / duration if duration > 0 else 0
    else:
        rate = 0.0
    eta = round(remaining / rate) if rate > 0 and remaining else None
    problems = (
        deliveries.problems()
        .order_by("-possibly_duplicate", "status", "pk")
        .values("email", "status", "last_error", "attempts", "possibly_duplicate")[
            :FAILURES_SHOWN
        ]
    )
    return {
        "status": send.status,
        "status_display": send.get_status_display(),
        "paused_reason": (
            send.paused_reason if send.status == Send.Status.PAUSED else ""
        ),
        "active": send.is_active,
        "total": total,
        "sent": counts[Delivery.Status.SENT],
        "failed": counts[Delivery.Status.FAILED],
        "bounced": counts[Delivery.Status.BOUNCED],
        "skipped": counts[Delivery.Status.SKIPPED],
        "queued": counts[Delivery.Status.QUEUED],
        "sending": counts[Delivery.Status.SENDING],
        "possibly_duplicated": deliveries.filter(possibly_duplicate=True).count(),
        "percent": int(100 * handled / total) if total else 0,
        "rate": round(rate, 1),
        "eta_seconds": eta,
        "started_at": send.started_at.isoformat() if send.started_at else None,
        "finished_at": send.finished_at.isoformat() if send.finished_at else None,
        **deliverability(send),
        "problems": [
            {
                "email": row["email"],
                "status": row["status"],
                "error": row["last_error"],
                "attempts": row["attempts"],
                "possibly_duplicate": row["possibly_duplicate"],
            }
            for row in problems
        ],
    }


def deliverability(send: Send) -> dict:
    """Return the send's complaint and hard-bounce rates next to the guard's limits
    (from the send's own counters: no query)."""
    figures = Figures.of(send)
    limits = Limits.from_settings()
    return {
        "accepted": figures.accepted,
        "attempted": figures.attempted,
        "complaints": figures.complaints,
        "hard_bounces": figures.hard_bounces,
        "complaint_rate": percent(figures.complaint_rate),
        "bounce_rate": percent(figures.bounce_rate),
        "complaint_limit": percent(limits.complaint_rate),
        "bounce_limit": percent(limits.bounce_rate),
        "min_sample": limits.min_sample,
        # Over the limit by the guard's own rule (a sample large enough), whether
        # or not it paused the send (it may be done, or resumed by the author).
        "complaints_over": figures.accepted >= limits.min_sample
        and figures.complaint_rate > limits.complaint_rate,
        "bounces_over": figures.attempted >= limits.min_sample
        and figures.bounce_rate > limits.bounce_rate,
    }


def send_panel(issue: Issue) -> dict:
    """Return what the send panel on an issue's change page shows."""
    send = Send.objects.filter(issue=issue).first()
    return {
        "send": send,
        "progress": send_progress(send) if send else None,
        "status_url": reverse("admin:sending_status", args=[issue.pk]),
        "pause_url": reverse("admin:sending_control", args=[issue.pk, "pause"]),
        "resume_url": reverse("admin:sending_control", args=[issue.pk, "resume"]),
        "retry_url": reverse("admin:sending_control", args=[issue.pk, "retry"]),
        "publish_url": reverse("admin:sending_publish", args=[issue.pk]),
        "schedule_url": reverse("admin:sending_schedule", args=[issue.pk]),
        "unpublish_url": reverse("admin:sending_unpublish", args=[issue.pk]),
        "unschedule_url": reverse("admin:sending_unschedule", args=[issue.pk]),
        "test_url": reverse("admin:sending_test", args=[issue.pk]),
        "preview_url": reverse("admin:sending_preview", args=[issue.pk]),
    }
