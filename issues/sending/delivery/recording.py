"""Recording outcomes as soon as they are known, one UPDATE per message."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from ..emails import message_id_for
from ..models import Delivery
from ..transports import BOUNCED, SENT, TRANSIENT, Outcome
from .claims import Claimed, retry_delay
from .postgres import _PgMarks


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
