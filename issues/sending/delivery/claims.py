"""Claiming work: which queued deliveries a worker takes (the emails: preparing)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Now

from subscribers.models import Subscriber

from ..models import Delivery, Send


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Claimed:
    id: int
    email: str
    segment: str
    attempts: int
    name: str
    token: str


def claim_batch(*, send_id: int, claimant: str, size: int) -> list[Claimed] | None:
    """Claim up to size queued deliveries; None when the send is not sending.

    PostgreSQL: FOR UPDATE SKIP LOCKED lets concurrent workers take disjoint batches
    without waiting. SQLite: the transaction starts with BEGIN IMMEDIATE (settings),
    which serialises claims; the conditional UPDATE is the guard in both cases.
    Rows whose subscriber stopped receiving since the audience was frozen are
    skipped here.
    """
    with transaction.atomic():
        status = Send.objects.filter(pk=send_id).values_list("status", flat=True)
        if list(status) != [Send.Status.SENDING]:
            return None
        ready = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now())
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(send_id=send_id, status=Delivery.Status.QUEUED, claimed_by="")
            .filter(ready)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return []
        Delivery.objects.filter(
            pk__in=ids, status=Delivery.Status.QUEUED, claimed_by=""
        ).update(claimed_by=claimant, claimed_at=Now())
        Send.objects.filter(pk=send_id).update(heartbeat_at=Now())
        rows = list(
            Delivery.objects.filter(pk__in=ids, claimed_by=claimant)
            .annotate(
                receiving=Exists(
                    Subscriber.objects.receiving().filter(pk=OuterRef("subscriber_id"))
                )
            )
            .values_list(
                "pk", "email", "segment", "attempts", "receiving",
                "subscriber__name", "subscriber__token",
            )
            .order_by("pk")
        )  # fmt: skip
        skipped = [row[0] for row in rows if not row[4]]
        if skipped:
            Delivery.objects.filter(pk__in=skipped).update(
                status=Delivery.Status.SKIPPED,
                last_error="Stopped receiving before this email went out.",
            )
    return [
        Claimed(pk, email, segment, attempts, name or "", token or "")
        for pk, email, segment, attempts, receiving, name, token in rows
        if receiving
    ]


def retry_delay(attempts: int) -> float:
    """Return seconds to wait before attempt number attempts + 1."""
    delay = settings.SENDING_RETRY_BASE_DELAY * 2 ** max(0, attempts - 1)
    return min(delay, settings.SENDING_RETRY_MAX_DELAY)
