"""Claiming work: which queued deliveries a worker takes (the emails: preparing)."""

from __future__ import annotations

import functools
import json
import os
import socket
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Exists, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Now

from issues.models import Issue
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
    # The subscriber lets their email be tracked (the pixel, tracked links).
    tracking: bool = False


def claim_batch(*, send_id: int, claimant: str, size: int) -> list[Claimed] | None:
    """Claim up to size queued deliveries; None when the send is not sending.

    PostgreSQL: one statement (claim_batch_sql) checks the send, beats its heart,
    takes the rows with FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint
    batches without waiting, and returns them with their subscribers. SQLite: the
    transaction starts with BEGIN IMMEDIATE (settings), which serialises claims; the
    conditional UPDATE is the guard. Rows whose subscriber stopped receiving since
    the audience was frozen (left the list, or only the issue's newsletter) are
    skipped here.
    """
    if connection.vendor == "postgresql":
        rows = _claim_in_one_statement(send_id=send_id, claimant=claimant, size=size)
        if not rows and not _is_sending(send_id):
            return None
    else:
        with transaction.atomic():
            if not _is_sending(send_id):
                return None
            rows = _claim_in_steps(send_id=send_id, claimant=claimant, size=size)
    skipped = [row[0] for row in rows if not row[4]]
    if skipped:
        Delivery.objects.filter(among(skipped)).update(
            status=Delivery.Status.SKIPPED,
            last_error="Stopped receiving before this email went out.",
        )
    return [
        Claimed(pk, email, segment, attempts, name or "", token or "", bool(tracking))
        for pk, email, segment, attempts, receiving, name, token, tracking in rows
        if receiving
    ]


def _is_sending(send_id: int) -> bool:
    status = Send.objects.filter(pk=send_id).values_list("status", flat=True)
    return list(status) == [Send.Status.SENDING]


def still_receiving(send_id: int):
    """Return who still receives the send's issue: receiving, and still on the
    issue's newsletter (its id a subquery, so the claim stays one statement)."""
    newsletter = Subquery(
        Issue.objects.filter(send__pk=send_id).values("newsletter_id")[:1]
    )
    return Subscriber.objects.receiving(newsletter=newsletter)


def _ready() -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now())


def _claim_in_steps(*, send_id: int, claimant: str, size: int) -> list[tuple]:
    ids = list(
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(send_id=send_id, status=Delivery.Status.QUEUED, claimed_by="")
        .filter(_ready())
        .order_by("pk")
        .values_list("pk", flat=True)[:size]
    )
    if not ids:
        return []
    Delivery.objects.filter(
        among(ids), status=Delivery.Status.QUEUED, claimed_by=""
    ).update(claimed_by=claimant, claimed_at=Now())
    Send.objects.filter(pk=send_id).update(heartbeat_at=Now())
    return list(
        Delivery.objects.filter(among(ids), claimed_by=claimant)
        .annotate(
            receiving=Exists(
                still_receiving(send_id).filter(pk=OuterRef("subscriber_id"))
            )
        )
        .values_list(
            "pk", "email", "segment", "attempts", "receiving",
            "subscriber__name", "subscriber__token", "subscriber__tracking",
        )
        .order_by("pk")
    )  # fmt: skip


def _claim_in_one_statement(*, send_id: int, claimant: str, size: int) -> list[tuple]:
    """The claim as one round trip: at a thousand messages a second the claim's
    five statements cost the recording thread a fifth of its time."""
    sql, params = claim_batch_sql(send_id=send_id, claimant=claimant, size=size)
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


# A worker claims batch after batch of the same send with the same arguments;
# compiling the ORM's queries again for each took a sixth of its time at 2,000
# messages a second. Nothing in the statement depends on the time it is made
# (the database's clock is SQL).
@functools.lru_cache(maxsize=16)
def claim_batch_sql(*, send_id: int, claimant: str, size: int) -> tuple[str, tuple]:
    """PostgreSQL's claim: the pieces are the ORM's own queries, compiled, so the
    rules (which rows are ready, who is receiving) live in one place."""
    ready_sql, ready_params = _compiled(
        Delivery.objects.filter(
            send_id=send_id, status=Delivery.Status.QUEUED, claimed_by=""
        )
        .filter(_ready())
        .order_by()
        .values("pk")
    )
    receiving_sql, receiving_params = _compiled(
        still_receiving(send_id).values("pk", "name", "token", "tracking")
    )
    quote = connection.ops.quote_name
    deliveries = quote(Delivery._meta.db_table)
    sends = quote(Send._meta.db_table)
    now = now_sql()
    # Each interpolated piece is SQL compiled by Django or a quoted table name;
    # every value travels as a parameter.
    sql = f"""
        WITH beat AS (
            UPDATE {sends} SET heartbeat_at = {now}
            WHERE id = %s AND status = %s RETURNING id
        ), ready AS (
            {ready_sql} AND EXISTS (SELECT 1 FROM beat)
            ORDER BY {deliveries}.id LIMIT %s FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE {deliveries} AS d SET claimed_by = %s, claimed_at = {now}
            FROM ready WHERE d.id = ready.pk
            RETURNING d.id, d.email, d.segment, d.attempts, d.subscriber_id
        )
        SELECT claimed.id, claimed.email, claimed.segment, claimed.attempts,
            receiving.pk IS NOT NULL, receiving.name, receiving.token,
            receiving.tracking
        FROM claimed LEFT JOIN ({receiving_sql}) AS receiving
            ON receiving.pk = claimed.subscriber_id
        ORDER BY claimed.id
    """  # noqa: S608
    params = (
        send_id, Send.Status.SENDING.value, *ready_params, size, claimant,
        *receiving_params,
    )  # fmt: skip
    return sql, params


def now_sql() -> str:
    """The database's clock (``Now()``) as SQL, for statements written out."""
    compiler = Delivery.objects.all().query.get_compiler(connection=connection)
    sql, _params = compiler.compile(Now())
    return sql


def _compiled(queryset) -> tuple[str, list]:
    sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


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
