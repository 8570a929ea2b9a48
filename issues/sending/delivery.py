"""The worker's side of a send: claim a batch, send it over one connection, record.

At any moment a worker process has at most one delivery in the "sending" state: the
one it is handing to the mail server. Marking the previous message sent and the next
one sending is a single UPDATE, so recording costs one round trip per message and a
crash leaves at most one ambiguous row per process (the reconciler re-sends it and
flags it as a possible duplicate).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from subscribers.models import Subscriber

from . import services
from .emails import PreparedEmail, Recipient, message_id_for, render_send
from .models import Delivery, Send
from .ratelimit import get_rate_limiter
from .transports import BOUNCED, SENT, TRANSIENT, Outcome, Transport, open_transport

# A few rendered sends per worker process, keyed by (send id, issue updated time).
_PREPARED: dict[tuple[int, object], dict[str, PreparedEmail]] = {}
# After this many connection failures in a row a batch stops and waits.
MAX_CONNECTION_FAILURES = 3


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def prepared_for(send: Send) -> dict[str, PreparedEmail]:
    """Return the send's emails per segment, rendered once per worker process."""
    key = (send.pk, send.issue.updated)
    if key not in _PREPARED:
        if len(_PREPARED) > 4:
            _PREPARED.clear()
        _PREPARED[key] = render_send(send.issue)
    return _PREPARED[key]


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
    now = timezone.now()
    with transaction.atomic():
        status = Send.objects.filter(pk=send_id).values_list("status", flat=True)
        if list(status) != [Send.Status.SENDING]:
            return None
        ready = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
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
        ).update(claimed_by=claimant, claimed_at=now)
        Send.objects.filter(pk=send_id).update(heartbeat_at=now)
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


@dataclass
class BatchRun:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    stopped: bool = False


def _nothing() -> None:
    return None


def _advance(row_id: int, prev: tuple[int, str] | None, now) -> None:
    """Mark row_id sending and the previous success (if any) sent: one statement."""
    if prev is None:
        Delivery.objects.filter(pk=row_id).update(
            status=Delivery.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now
        )
        return
    prev_id, prev_message_id = prev
    # Hand-written because it runs once per message: the ORM's Case/When
    # compilation cost more than the round trip itself.
    with connection.cursor() as cursor:
        cursor.execute(
            _ADVANCE_SQL,
            [
                prev_id, Delivery.Status.SENT, Delivery.Status.SENDING,
                prev_id, now, prev_id, prev_message_id, prev_id,
                row_id, now, prev_id, row_id,
            ],
        )  # fmt: skip


_ADVANCE_SQL = """
UPDATE sending_delivery SET
    status = CASE WHEN id = %s THEN %s ELSE %s END,
    sent_at = CASE WHEN id = %s THEN %s ELSE sent_at END,
    message_id = CASE WHEN id = %s THEN %s ELSE message_id END,
    last_error = CASE WHEN id = %s THEN '' ELSE last_error END,
    attempts = CASE WHEN id = %s THEN attempts + 1 ELSE attempts END,
    claimed_at = %s
WHERE id IN (%s, %s)
"""


class _Recorder:
    """Record outcomes as soon as they are known, one UPDATE per message."""

    def __init__(
        self,
        claimant: str,
        domain: str,
        send_id: int,
        marks: _PgMarks | None = None,
    ) -> None:
        self.claimant = claimant
        self.domain = domain
        self.send_id = send_id
        self.marks = marks
        self.pending_sent: tuple[int, str] | None = None
        self.renewed = time.monotonic()

    def start(self, row: Claimed) -> tuple[str, Callable[[], None]]:
        """Mark row sending (and the previous success sent) in one statement.

        Return the row's Message-ID and a function that returns once the mark is
        committed. On PostgreSQL the statement runs while the message is being
        transmitted; the transport calls that function before it
        lets the server accept the message, so a message the server accepted always
        has its row marked "sending" or "sent" first.
        """
        self._settle()
        message_id = message_id_for(
            delivery_id=row.id, send_id=self.send_id, domain=self.domain
        )
        prev, self.pending_sent = self.pending_sent, None
        if self.marks is None:
            _advance(row.id, prev, timezone.now())
            return message_id, _nothing
        self.marks.submit(row.id, prev, timezone.now())
        return message_id, self._settle

    def _settle(self) -> None:
        if self.marks is not None:
            self.marks.wait()

    def _renew_lease(self) -> None:
        # Keep the rest of the batch ours while we are alive and working.
        self._settle()
        if time.monotonic() - self.renewed > settings.SENDING_LEASE_SECONDS / 3:
            Delivery.objects.filter(
                claimed_by=self.claimant, status=Delivery.Status.QUEUED
            ).update(claimed_at=timezone.now())
            self.renewed = time.monotonic()

    def flush(self) -> None:
        self._settle()
        if self.pending_sent is not None:
            prev_id, prev_message_id = self.pending_sent
            Delivery.objects.filter(pk=prev_id).update(
                status=Delivery.Status.SENT,
                sent_at=timezone.now(),
                message_id=prev_message_id,
                last_error="",
            )
            self.pending_sent = None

    def outcome(self, row: Claimed, outcome: Outcome, message_id: str) -> str:
        self._settle()
        if outcome.kind == SENT:
            self.pending_sent = (row.id, outcome.message_id or message_id)
            return SENT
        attempts = row.attempts + 1
        if outcome.kind == TRANSIENT and attempts < settings.SENDING_MAX_ATTEMPTS:
            Delivery.objects.filter(pk=row.id).update(
                status=Delivery.Status.QUEUED,
                claimed_by="",
                claimed_at=None,
                last_error=outcome.error[:2000],
                next_attempt_at=timezone.now()
                + timedelta(seconds=retry_delay(attempts)),
            )
            return TRANSIENT
        status = Delivery.Status.BOUNCED if outcome.kind == BOUNCED else "failed"
        Delivery.objects.filter(pk=row.id).update(
            status=status, last_error=outcome.error[:2000], claimed_at=timezone.now()
        )
        self._renew_lease()
        if outcome.kind == BOUNCED:
            from subscribers.services import suppress_address

            suppress_address(email=row.email, reason="bounced")
        return status

    def release(self, *, wait: float = 0) -> int:
        """Hand back the claimed rows this worker did not get to.

        After the mail server became unreachable they wait like a retry would,
        without using up an attempt.
        """
        self._settle()
        return Delivery.objects.filter(
            claimed_by=self.claimant, status=Delivery.Status.QUEUED
        ).update(
            claimed_by="",
            claimed_at=None,
            next_attempt_at=(timezone.now() + timedelta(seconds=wait))
            if wait
            else None,
        )


def send_batch(
    *,
    send_id: int,
    rows: list[Claimed],
    prepared: dict[str, PreparedEmail],
    transport: Transport,
    claimant: str,
    marks: _PgMarks | None = None,
) -> BatchRun:
    """Send claimed rows over the transport, recording each outcome at once."""
    run = BatchRun()
    domain = next(iter(prepared.values())).message_domain
    recorder = _Recorder(claimant, domain, send_id, marks)
    limiter = get_rate_limiter()
    connection_failures = 0
    try:
        for row in rows:
            limiter.acquire()
            message_id, marked = recorder.start(row)
            outcome = transport.send(
                prepared[row.segment],
                Recipient(
                    email=row.email,
                    name=row.name,
                    token=row.token,
                    message_id=message_id,
                ),
                before_accept=marked,
            )
            kind = recorder.outcome(row, outcome, message_id)
            if kind == SENT:
                run.sent += 1
                connection_failures = 0
            elif kind == TRANSIENT:
                run.retried += 1
            else:
                run.failed += 1
            if outcome.connection_lost and outcome.kind == TRANSIENT:
                connection_failures += 1
                if connection_failures >= MAX_CONNECTION_FAILURES:
                    run.stopped = True
                    break
    finally:
        recorder.flush()
        recorder.release(wait=retry_delay(1) if run.stopped else 0)
    return run


@dataclass
class LoopResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    # What the task should do next: "more", "wait" (after `wait` seconds), "idle"
    # (other workers hold the rest), "done" or "stopped" (paused or not sending).
    next: str = "idle"
    wait: float = 0.0


def deliver_send(*, send_id: int, time_budget: float = 60.0) -> LoopResult:
    """Work through a send's queued deliveries for up to time_budget seconds."""
    result = LoopResult()
    try:
        send = Send.objects.select_related("issue").get(pk=send_id)
    except Send.DoesNotExist:
        result.next = "stopped"
        return result
    if send.status != Send.Status.SENDING:
        result.next = "stopped"
        return result
    prepared = prepared_for(send)
    claimant = f"{worker_name()}:{secrets.token_hex(4)}"
    deadline = time.monotonic() + time_budget
    _fast_commits(True)
    marks = _PgMarks.for_connection()
    try:
        with open_transport() as transport:
            while time.monotonic() < deadline:
                rows = claim_batch(
                    send_id=send_id,
                    claimant=claimant,
                    size=settings.SENDING_BATCH_SIZE,
                )
                if rows is None:
                    result.next = "stopped"
                    return result
                if not rows:
                    break
                run = send_batch(
                    send_id=send_id,
                    rows=rows,
                    prepared=prepared,
                    transport=transport,
                    claimant=claimant,
                    marks=marks,
                )
                result.sent += run.sent
                result.failed += run.failed
                result.retried += run.retried
                if run.stopped:
                    break
    finally:
        if marks is not None:
            marks.wait()
        _fast_commits(False)
    services.refresh_counts(send_id=send_id)
    return _what_next(send_id, result)


def _what_next(send_id: int, result: LoopResult) -> LoopResult:
    now = timezone.now()
    queued = Delivery.objects.filter(send_id=send_id, status=Delivery.Status.QUEUED)
    free = queued.filter(claimed_by="")
    if free.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    ).exists():
        result.next = "more"
        return result
    waiting = free.order_by("next_attempt_at").values_list("next_attempt_at", flat=True)
    first = waiting.first()
    if first is not None:
        result.next = "wait"
        result.wait = max(0.5, (first - now).total_seconds())
        return result
    if services.finish_send_if_complete(send_id=send_id):
        result.next = "done"
    return result


def _fast_commits(on: bool) -> None:
    """On PostgreSQL, don't wait for the WAL flush on each outcome's commit.

    A crash of the worker loses nothing (the server has the commit); only a crash of
    the database server itself could forget the last fraction of a second of
    outcomes, and those few messages would be sent again.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SET synchronous_commit TO OFF" if on else "RESET synchronous_commit"
        )


_ADVANCE_PG = b"""
UPDATE sending_delivery SET
    status = CASE WHEN id = $1 THEN 'sent' ELSE 'sending' END,
    sent_at = CASE WHEN id = $1 THEN $2::timestamptz ELSE sent_at END,
    message_id = CASE WHEN id = $1 THEN $3 ELSE message_id END,
    last_error = CASE WHEN id = $1 THEN '' ELSE last_error END,
    attempts = CASE WHEN id = $4 THEN attempts + 1 ELSE attempts END,
    claimed_at = $2::timestamptz
WHERE id IN ($1, $4)
"""
_START_PG = b"""
UPDATE sending_delivery
SET status = 'sending', attempts = attempts + 1, claimed_at = $2::timestamptz
WHERE id = $1
"""


class _PgMarks:
    """Send the per-message UPDATE without waiting, and collect it later.

    libpq sends the statement and returns at once; the answer is read just before
    the mail server is allowed to accept the message, so the database round trip
    overlaps the SMTP ones instead of adding to them. Nothing else uses the
    connection in between (every other query first waits for the pending one).
    """

    def __init__(self, pgconn) -> None:
        self.pgconn = pgconn
        self.pending = False

    @classmethod
    def for_connection(cls) -> _PgMarks | None:
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            return None
        connection.ensure_connection()
        pgconn = getattr(connection.connection, "pgconn", None)
        return cls(pgconn) if pgconn is not None else None

    def submit(self, row_id: int, prev: tuple[int, str] | None, now) -> None:
        self.wait()
        stamp = now.isoformat().encode()
        if prev is None:
            self.pgconn.send_query_params(_START_PG, [str(row_id).encode(), stamp])
        else:
            prev_id, prev_message_id = prev
            self.pgconn.send_query_params(
                _ADVANCE_PG,
                [
                    str(prev_id).encode(),
                    stamp,
                    prev_message_id.encode(),
                    str(row_id).encode(),
                ],
            )
        self.pending = True

    def wait(self) -> None:
        if not self.pending:
            return
        from psycopg import pq

        self.pending = False
        error = None
        while (result := self.pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK:
                error = result.error_message.decode(errors="replace")
        if error:
            raise DatabaseError(error)
