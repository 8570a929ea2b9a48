"""Claiming work: which queued deliveries a worker takes (the emails: preparing)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Exists, OuterRef, Q
from django.db.models.expressions import RawSQL
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
            among(ids), status=Delivery.Status.QUEUED, claimed_by=""
        ).update(claimed_by=claimant, claimed_at=Now())
        Send.objects.filter(pk=send_id).update(heartbeat_at=Now())
        rows = list(
            Delivery.objects.filter(among(ids), claimed_by=claimant)
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
            Delivery.objects.filter(among(skipped)).update(
                status=Delivery.Status.SKIPPED,
                last_error="Stopped receiving before this email went out.",
            )
    return [
        Claimed(pk, email, segment, attempts, name or "", token or "")
        for pk, email, segment, attempts, receiving, name, token in rows
        if receiving
    ]


def among(ids: list[int]) -> Q:
    """``pk__in=ids`` as one parameter: ``= ANY(array)`` on PostgreSQL, a JSON
    list on SQLite. Django prepares an IN list value by value, which for a batch of
    hundreds cost more than the claim's queries themselves."""
    quote = connection.ops.quote_name
    column = f"{quote(Delivery._meta.db_table)}.{quote('id')}"
    # Only the ids travel, as one parameter; the rest is fixed SQL.
    if connection.vendor == "postgresql":
        sql, params = f"{column} = ANY(%s)", (list(ids),)
    else:
        sql, params = (
            f"{column} IN (SELECT value FROM json_each(%s))",  # noqa: S608
            (json.dumps(ids),),
        )
    return Q(RawSQL(sql, params, output_field=BooleanField()))  # noqa: S611


def retry_delay(attempts: int) -> float:
    """Return seconds to wait before attempt number attempts + 1."""
    delay = settings.SENDING_RETRY_BASE_DELAY * 2 ** max(0, attempts - 1)
    return min(delay, settings.SENDING_RETRY_MAX_DELAY)
