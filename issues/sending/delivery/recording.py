"""Recording outcomes as soon as they are known, one UPDATE per message.

Marking the previous message sent and the next one sending is one statement, built
once (``ADVANCE``) from the Delivery table and its status values. On PostgreSQL it is
also prepared once per database session and sent without waiting (``PgMarks``), so
its round trip overlaps the SMTP ones, and commits skip the WAL flush wait
(``recording_session``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import F
from django.utils import timezone
from psycopg import pq

from subscribers.services import suppress_address

from ..emails import message_id_for
from ..models import Delivery
from ..transports import BOUNCED, SENT, TRANSIENT, Outcome
from .claims import Claimed, retry_delay


def _statement(template: str, **values: str) -> str:
    """Fill a per-message statement with the table and the status values."""
    return template.format(
        table=f'"{Delivery._meta.db_table}"',
        sent=f"'{Delivery.Status.SENT.value}'",
        sending=f"'{Delivery.Status.SENDING.value}'",
        **values,
    )


# Hand-written because it runs once per message: the ORM's Case/When compilation
# cost more than the round trip itself. prev is the row that was accepted, row the
# one about to be handed to the mail server.
_ADVANCE = """
UPDATE {table} SET
    status = CASE WHEN id = {prev} THEN {sent} ELSE {sending} END,
    sent_at = CASE WHEN id = {prev} THEN {now} ELSE sent_at END,
    message_id = CASE WHEN id = {prev} THEN {message_id} ELSE message_id END,
    last_error = CASE WHEN id = {prev} THEN '' ELSE last_error END,
    attempts = CASE WHEN id = {row} THEN attempts + 1 ELSE attempts END,
    claimed_at = {now}
WHERE id IN ({prev}, {row})
"""
_START = """
UPDATE {table} SET status = {sending}, attempts = attempts + 1, claimed_at = {now}
WHERE id = {row}
"""
# Through Django's cursor (named parameters, every database).
ADVANCE = _statement(
    _ADVANCE,
    prev="%(prev)s",
    now="%(now)s",
    message_id="%(message_id)s",
    row="%(row)s",
)
# Prepared in each PostgreSQL session (numbered parameters, as libpq takes them).
_PG_ARGS = {"prev": "$1", "now": "$2::timestamptz", "message_id": "$3", "row": "$4"}
ADVANCE_PG = _statement(_ADVANCE, **_PG_ARGS)
START_PG = _statement(_START, row="$1", now="$2::timestamptz")


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
    with connection.cursor() as cursor:
        cursor.execute(
            ADVANCE,
            {"prev": prev_id, "now": now, "message_id": prev_message_id, "row": row_id},
        )


def fast_commits(on: bool) -> None:
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


# Prepared once per database session: the per-message statement then skips parsing
# and planning, which cost PostgreSQL more than the update itself.
_STATEMENTS = {
    b"quire_delivery_advance": ADVANCE_PG.encode(),
    b"quire_delivery_start": START_PG.encode(),
}
_DUPLICATE_PREPARED_STATEMENT = b"42P05"


def _prepare(pgconn) -> None:
    for name, sql in _STATEMENTS.items():
        result = pgconn.prepare(name, sql)
        if result.status == pq.ExecStatus.COMMAND_OK:
            continue
        # A session reused from an earlier task already has them.
        state = result.error_field(pq.DiagnosticField.SQLSTATE)
        if state != _DUPLICATE_PREPARED_STATEMENT:
            raise DatabaseError(result.error_message.decode(errors="replace"))


class PgMarks:
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
    def for_connection(cls) -> PgMarks | None:
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            return None
        connection.ensure_connection()
        pgconn = getattr(connection.connection, "pgconn", None)
        if pgconn is None:
            return None
        _prepare(pgconn)
        return cls(pgconn)

    def submit(self, row_id: int, prev: tuple[int, str] | None, now) -> None:
        self.wait()
        stamp = now.isoformat().encode()
        if prev is None:
            self.pgconn.send_query_prepared(
                b"quire_delivery_start", [str(row_id).encode(), stamp]
            )
        else:
            prev_id, prev_message_id = prev
            self.pgconn.send_query_prepared(
                b"quire_delivery_advance",
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
        self.pending = False
        error = None
        while (result := self.pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK:
                error = result.error_message.decode(errors="replace")
        if error:
            raise DatabaseError(error)


@contextmanager
def recording_session() -> Iterator[PgMarks | None]:
    """Set up a worker's recording; yield the PostgreSQL pipeline, if there is one.

    On leaving, the last pending mark is collected and commits wait for the WAL
    flush again.
    """
    fast_commits(True)
    marks = PgMarks.for_connection()
    try:
        yield marks
    finally:
        if marks is not None:
            marks.wait()
        fast_commits(False)


class Recorder:
    """Record outcomes as soon as they are known, one UPDATE per message."""

    def __init__(
        self,
        claimant: str,
        domain: str,
        send_id: int,
        marks: PgMarks | None = None,
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
        status = (
            Delivery.Status.BOUNCED
            if outcome.kind == BOUNCED
            else Delivery.Status.FAILED
        )
        Delivery.objects.filter(pk=row.id).update(
            status=status, last_error=outcome.error[:2000], claimed_at=timezone.now()
        )
        self._renew_lease()
        if outcome.kind == BOUNCED:
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
