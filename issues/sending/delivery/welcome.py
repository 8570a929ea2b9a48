"""Welcome sequences: the subscribers a step has come due for, added to its Send.

A step's emails are its issue's Send, which lives as long as the step: idle ("done")
while nobody is due, "sending" while the deliveries added by the last run go out
through the same claims, batches, retries and reconciler as an issue's. Beat runs
``enqueue_welcome_steps`` every few seconds; per active step it is one aggregate
when nobody is due, and otherwise an INSERT ... SELECT per block of subscriber ids
(never a statement per subscriber), then the count. The unique (send, subscriber)
pair makes each step reach a subscriber at most once, however often it runs.

Who is due is decided in the database, on the database's clock: subscribers of the
step's newsletter who are receiving, confirmed at least ``delay`` ago and not before
the step was first activated, matching its condition, without a delivery of this
send. Someone who leaves stops matching; a delivery already queued for them is
skipped by the claim's "still receiving" check.

Nothing here enqueues: the task queues batch tasks for the send ids returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from django.db import connection, transaction
from django.db.models import (
    Case,
    Exists,
    F,
    Field,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Now

from issues.access import paid_subscribers_q
from subscribers.billing.models import Membership
from subscribers.models import Subscriber

from ..models import Delivery, Send, WelcomeStep
from .clock import database_now

# Rows are written in blocks of subscriber ids, each one INSERT ... SELECT (as the
# audience of an issue is frozen).
ENQUEUE_CHUNK = 20_000
# Stripe subscriptions that count as paying for "Not yet paying": a trial, paid,
# or a payment failing; complimentary access is not paying.
PAYING_STATUSES = [
    Membership.Status.ACTIVE,
    Membership.Status.TRIALING,
    Membership.Status.PAST_DUE,
]


def condition_q(condition: str) -> Q:
    """Return a filter on Subscriber for a step's condition ("", free, unpaid)."""
    if condition == WelcomeStep.Condition.FREE:
        # The rule the paid email uses: any paid or complimentary access.
        return ~Q(
            Exists(
                Membership.objects.with_paid_access().filter(subscriber=OuterRef("pk"))
            )
        )
    if condition == WelcomeStep.Condition.NOT_PAID:
        return ~Q(
            Exists(
                Membership.objects.filter(
                    subscriber=OuterRef("pk"), status__in=PAYING_STATUSES
                )
            )
        )
    return Q()


def due_subscribers(
    *, step: WelcomeStep, send: Send, now: datetime
) -> QuerySet[Subscriber]:
    """Return the subscribers the step is due for at now and who lack it."""
    assert step.activated_at is not None
    return (
        Subscriber.objects.receiving(newsletter=step.newsletter_id)
        .filter(
            confirmed_at__isnull=False,
            confirmed_at__gte=step.activated_at,
            confirmed_at__lte=now - step.delay,
        )
        .filter(condition_q(step.condition))
        .exclude(Exists(Delivery.objects.filter(send=send, subscriber=OuterRef("pk"))))
    )


def step_send(step: WelcomeStep) -> Send:
    """Return the step's Send, made idle ("done", nobody yet) if it has none."""
    send, _ = Send.objects.get_or_create(
        issue_id=step.issue_id, defaults={"status": Send.Status.DONE}
    )
    return send


def enqueue_step(*, step: WelcomeStep, now: datetime) -> tuple[int, int | None]:
    """Add a queued Delivery for everyone the step is due for; return how many
    were added, and the send's id if it is sending them (it needs batch tasks)."""
    with transaction.atomic():
        # The lock makes runs of the same step (two beats, a retried task) queue
        # behind each other, so none inserts a pair the other just inserted.
        send = Send.objects.select_for_update().filter(
            issue_id=step.issue_id
        ).first() or step_send(step)
        due = due_subscribers(step=step, send=send, now=now)
        bounds = due.aggregate(low=Min("pk"), high=Max("pk"))
        if bounds["low"] is None:
            return 0, None
        low = bounds["low"]
        added = 0
        while low <= bounds["high"]:
            added += insert_deliveries(
                due.filter(pk__gte=low, pk__lt=low + ENQUEUE_CHUNK), send
            )
            low += ENQUEUE_CHUNK
        if not added:
            return 0, None
        reopen = send.status == Send.Status.DONE
        Send.objects.filter(pk=send.pk).update(
            total=F("total") + added,
            # Idle until now: sending again, its heartbeat fresh so that neither
            # the reconciler nor /healthz reads the quiet days as a stall.
            status=Send.Status.SENDING if reopen else F("status"),
            finished_at=None if reopen else F("finished_at"),
            heartbeat_at=Now(),
            started_at=Coalesce(F("started_at"), Now()),
        )
    # A paused step's send stays paused: the author resumes it.
    sending = send.status in (Send.Status.DONE, Send.Status.SENDING)
    return added, send.pk if sending else None


def enqueue_welcome_steps(*, now: datetime | None = None) -> list[int]:
    """Add the deliveries every active step has come due for; return the ids of
    the sends that got some and are sending (the task gives them batch tasks).

    now: the moment to judge by (tests move it forward); the database's clock
    otherwise.
    """
    now = now or database_now()
    kick = []
    steps = WelcomeStep.objects.filter(active=True, activated_at__isnull=False)
    for step in steps.order_by("pk"):
        _added, send_id = enqueue_step(step=step, now=now)
        if send_id is not None:
            kick.append(send_id)
    return kick


def insert_deliveries(rows: QuerySet[Subscriber], send: Send) -> int:
    """INSERT INTO delivery ... SELECT the rows; return how many were written."""
    select = (
        rows.annotate(
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
    select_sql, params = select.query.sql_with_params()
    table = connection.ops.quote_name(Delivery._meta.db_table)
    columns = ", ".join(
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
        return max(cursor.rowcount, 0)
