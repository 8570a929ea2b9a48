"""Who receives an issue, and freezing that audience into one Delivery per recipient."""

from __future__ import annotations

from typing import cast

from django.db import connection, transaction
from django.db.models import Case, Field, Max, Min, QuerySet, Value, When
from django.utils import timezone

from issues.access import paid_subscribers_q
from issues.models import Issue
from subscribers.models import Segment, Subscriber
from subscribers.segments import segment_q

from ..models import Delivery, Send

# Audience rows are written in chunks of subscriber ids, each one INSERT ... SELECT.
FREEZE_CHUNK = 20_000


def audience(issue: Issue) -> QuerySet[Subscriber]:
    """Return who receives the issue if it is sent now: its newsletter's
    subscribers narrowed by its audience, as one query (no evaluation).

    Free and paid split by the paid email's rule (the same filter that picks
    each recipient's email below); a web-only issue reaches nobody.
    """
    receiving = Subscriber.objects.receiving(newsletter=issue.newsletter_id)
    chosen = issue.audience
    if chosen == Issue.Audience.WEB:
        return receiving.none()
    if chosen == Issue.Audience.PAID:
        return receiving.filter(paid_subscribers_q())
    if chosen == Issue.Audience.FREE:
        return receiving.exclude(paid_subscribers_q())
    if chosen == Issue.Audience.SEGMENT:
        if issue.segment_id is None:
            # The form requires one; a row changed past it reaches nobody.
            return receiving.none()
        return receiving.filter(segment_q(cast(Segment, issue.segment)))
    return receiving


def freeze_audience(*, send: Send) -> int:
    """Write one queued Delivery per current recipient, set-based, and start sending.

    Runs once: the send leaves "preparing" in the same transaction. Someone who joins
    afterwards does not get this issue.
    """
    with transaction.atomic():
        send = Send.objects.select_for_update().get(pk=send.pk)
        if send.status != Send.Status.PREPARING:
            return 0
        recipients = audience(
            Issue.objects.select_related("segment").get(pk=send.issue_id)
        )
        bounds = recipients.aggregate(low=Min("pk"), high=Max("pk"))
        if bounds["low"] is not None:
            low = bounds["low"]
            while low <= bounds["high"]:
                _insert_deliveries(send, recipients, low, low + FREEZE_CHUNK)
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


def _insert_deliveries(
    send: Send, recipients: QuerySet[Subscriber], low: int, high: int
) -> None:
    """INSERT INTO delivery ... SELECT from the audience with ids in [low, high)."""
    rows = (
        recipients.filter(pk__gte=low, pk__lt=high)
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
