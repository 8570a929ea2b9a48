"""Recording outcomes as soon as they are known, many messages per statement.

The sessions (delivery/sessions.py) hand every mark and outcome to a thread that
owns a database connection, which writes whatever has arrived since its last write
in one UPDATE: a row is marked "sending" (committed) before its session lets the
server accept it, and "sent" in the next write after the server's answer. On
PostgreSQL the marks and the accepted messages go to a second thread and
connection, which writes both, and the guard's count, in one statement with no
transaction around it (``Recorder.advance``); refusals, retries and claims stay on
the first. With twenty sessions that is one statement for about twenty messages.

Times written here are the database's (``Now()``), never a worker's: the reconciler
compares leases with the same clock whichever host wrote them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.db.utils import DatabaseErrorWrapper

from subscribers.services import suppress_address

from .. import guard
from ..models import Delivery
from ..transports import BOUNCED, SENT, TRANSIENT, Outcome
from .claims import Claimed, now_sql, retry_delay


def separate_marks() -> bool:
    """Whether the "sending" marks get a thread and connection of their own.

    On PostgreSQL they do: a session waits for its mark before the server may accept
    the message, and on the recording connection that mark would queue behind every
    claim and outcome written meanwhile. Not inside a transaction (the other
    connection could not see its rows), nor on SQLite (one writer at a time).
    """
    return connection.vendor == "postgresql" and not connection.in_atomic_block


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


@contextmanager
def recording_session() -> Iterator[None]:
    """Commits skip the WAL flush wait while a worker records outcomes."""
    fast_commits(True)
    try:
        yield
    finally:
        fast_commits(False)


def _quoted(value: str) -> str:
    """value as an element of a PostgreSQL array literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Latch:
    """A result one thread sets once and another waits for: the part of a
    concurrent.futures.Future the sessions use, at a fifth of its cost (a lock
    released, no condition to notify). The thread writing the marks resolves two
    per message, and it is the one every session waits for. Setting it again does
    nothing."""

    __slots__ = ("_gate", "_once", "_value", "_error")

    def __init__(self) -> None:
        self._gate = threading.Lock()
        self._gate.acquire()
        # Emptied (list.pop, atomic) by whichever setter comes first.
        self._once = [True]
        self._value: object = None
        self._error: BaseException | None = None

    def set_result(self, value: object) -> None:
        if self._claim():
            self._value = value
            self._gate.release()

    def set_exception(self, error: BaseException) -> None:
        if self._claim():
            self._error = error
            self._gate.release()

    def _claim(self) -> bool:
        try:
            self._once.pop()
        except IndexError:
            return False
        return True

    def done(self) -> bool:
        return not self._once

    def result(self) -> object:
        """Wait until set; return the value, or raise the exception set."""
        with self._gate:
            pass
        if self._error is not None:
            raise self._error
        return self._value


@dataclass
class Start:
    """A session is about to hand row to the server: mark it sending first."""

    row: Claimed
    # Resolved once the mark is committed, with whether the row was still this
    # worker's (False: its lease ran out and the reconciler gave it to another
    # worker, so this one must not send it). The session waits for it before the
    # server may accept the message.
    done: Latch = field(default_factory=Latch)


@dataclass
class Done:
    """The server answered for row."""

    row: Claimed
    outcome: Outcome
    message_id: str
    # False when the server refused the envelope before the row was marked sending
    # (a pipelined MAIL or RCPT): the attempt is counted here.
    started: bool = True
    # Resolved once the outcome is written. The session waits for it before the
    # server may accept its next message: were the writes to fall behind, rows
    # accepted but still "sending" would pile up beyond one per session, and a
    # crash would send all of them again.
    recorded: Latch = field(default_factory=Latch)


class Recorder:
    """Write marks and outcomes in groups; runs in the thread that owns the
    database connection."""

    def __init__(self, claimant: str, *, send_id: int) -> None:
        self.claimant = claimant
        self.send_id = send_id
        self.table = connection.ops.quote_name(Delivery._meta.db_table)
        self.now = now_sql()
        self._advance_statement: str | None = None
        self._cursor: psycopg.Cursor | None = None
        # psycopg's errors raised as Django's, as a Django cursor would.
        self._errors = DatabaseErrorWrapper(connection)

    def write(self, ops: list[Start | Done]) -> dict[str, int]:
        """Record ops (in order of arrival); return how many rows ended how.

        Raises what the database raises; the marks of this group then fail, and
        their sessions drop their messages before the server can accept them.
        """
        starts = [op for op in ops if isinstance(op, Start)]
        dones = [op for op in ops if isinstance(op, Done)]
        sent = [op for op in dones if op.outcome.kind == SENT]
        counts = {"sent": len(sent), "failed": 0, "retried": 0}
        try:
            if connection.vendor == "postgresql":
                # The marks' thread's own statement, here inside the caller's
                # transaction if there is one: one way to write them per database.
                self.advance(starts, sent)
            else:
                self._advance_and_resolve(starts, sent)
            for op in dones:
                if op.outcome.kind != SENT:
                    kind = self._unsent(op.row, op.outcome, counted=op.started)
                    counts["retried" if kind == TRANSIENT else "failed"] += 1
        except BaseException as exc:
            for op in dones:
                if not op.recorded.done():
                    op.recorded.set_exception(exc)
            raise
        for op in dones:
            op.recorded.set_result(None)
        return counts

    def advance(self, starts: list[Start], sent: list[Done]) -> int:
        """Mark the started rows sending and the accepted ones sent, and count
        those for the deliverability guard: one statement, one round trip, no
        transaction (PostgreSQL; the marks' own thread, see ``separate_marks``).
        Then resolve every mark and outcome; return how many rows were sent.

        A session waits for both (its next message's mark, its previous
        message's outcome) before the server may accept its next message, and
        both are in the same write. It is the thread every session waits for, so
        it does little per row in Python: the statement's text is the same every
        time (prepared once per connection), the rows travel as two array
        literals (the sent rows' ids first, then the started ones; only the sent
        have a Message-ID), and the answer is one row.
        """
        if not starts and not sent:
            return 0
        rows: list[Start | Done] = [*sent, *starts]
        ids = "{" + ",".join([str(int(op.row.id)) for op in rows]) + "}"
        message_ids = (
            "{"
            + ",".join([_quoted(op.outcome.message_id or op.message_id) for op in sent])
            + "}"
        )
        params = [ids, message_ids, self.claimant, Delivery.Status.QUEUED.value,
                  self.send_id]  # fmt: skip
        try:
            with self._errors:
                cursor = self._advance_cursor()
                cursor.execute(self._advance_sql(), params, prepare=True)
                row = cursor.fetchone()
        except BaseException as exc:
            for op in starts:
                op.done.set_exception(exc)
            for op in sent:
                op.recorded.set_exception(exc)
            raise
        assert row is not None  # (the statement always answers one row)
        marked = set(row[0] or ())
        for op in starts:
            op.done.set_result(op.row.id in marked)
        for op in sent:
            op.recorded.set_result(None)
        if row[2] is not None:
            guard.judge(send_id=self.send_id, row=row[2:])
        return row[1]

    def _advance_cursor(self) -> psycopg.Cursor:
        """psycopg's own cursor on this thread's connection, kept from group to
        group: bound and prepared on the server, the statement is parsed and
        planned once per connection, not once per group."""
        cursor = self._cursor
        if cursor is None or cursor.closed:
            connection.ensure_connection()
            cursor = self._cursor = psycopg.Cursor(connection.connection)
        return cursor

    def _advance_sql(self) -> str:
        if self._advance_statement is None:
            # The table's quoted name, the database's clock and the guard's own
            # SQL; every value is a parameter.
            sending = Delivery.Status.SENDING.value
            sent = Delivery.Status.SENT.value
            counted = guard.accepted_sql(
                "(SELECT count(*) FROM advanced WHERE sent)",
                when="EXISTS (SELECT 1 FROM advanced WHERE sent)",
            )
            self._advance_statement = f"""
                WITH given AS (
                    -- The shorter array (message ids) is padded with NULLs.
                    SELECT * FROM unnest(%s::bigint[], %s::text[])
                        AS given(id, message_id)
                ), advanced AS (
                    UPDATE {self.table} AS d SET
                        status = CASE WHEN given.message_id IS NULL
                            THEN '{sending}' ELSE '{sent}' END,
                        sent_at = CASE WHEN given.message_id IS NULL
                            THEN d.sent_at ELSE {self.now} END,
                        message_id = COALESCE(given.message_id, d.message_id),
                        last_error = CASE WHEN given.message_id IS NULL
                            THEN d.last_error ELSE '' END,
                        attempts = CASE WHEN given.message_id IS NULL
                            THEN d.attempts + 1 ELSE d.attempts END,
                        claimed_at = {self.now}
                    FROM given
                    WHERE d.id = given.id AND (
                        given.message_id IS NOT NULL
                        OR (d.claimed_by = %s AND d.status = %s)
                    )
                    RETURNING d.id, given.message_id IS NOT NULL AS sent
                ), counted AS (
                    {counted}
                )
                SELECT
                    (SELECT array_agg(id) FROM advanced WHERE NOT sent),
                    (SELECT count(*) FROM advanced WHERE sent),
                    counted.*
                FROM (SELECT 1) AS one LEFT JOIN counted ON true
            """  # noqa: S608
        return self._advance_statement

    def _advance_and_resolve(self, starts: list[Start], sent: list[Done]) -> None:
        """_advance(), then tell each started row's session whether it may send
        (SQLite; PostgreSQL writes the same with advance()).

        The accepted emails are counted for the deliverability guard in the same
        transaction (which may pause the send: the next claim then stops).
        """
        try:
            if sent:
                with transaction.atomic():
                    touched = self._advance(starts, sent)
                    sent_ids = {op.row.id for op in sent}
                    guard.count(send_id=self.send_id, accepted=len(touched & sent_ids))
                marked = touched - sent_ids
            else:
                marked = self._advance(starts, sent)
        except BaseException as exc:
            for op in starts:
                op.done.set_exception(exc)
            raise
        for op in starts:
            op.done.set_result(op.row.id in marked)

    def _advance(self, starts: list[Start], sent: list[Done]) -> set[int]:
        """Mark the started rows sending and the accepted ones sent: one UPDATE.

        Return the ids of the accepted rows, and of the started rows that were
        still claimed by this worker.
        """
        if not starts and not sent:
            return set()
        params: list = []
        sent_ids = ", ".join(str(op.row.id) for op in sent) or "NULL"
        start_ids = ", ".join(str(op.row.id) for op in starts) or "NULL"
        message_ids = ""
        if sent:
            message_ids = " ".join("WHEN %s THEN %s" for _ in sent)
            for op in sent:
                params += [op.row.id, op.outcome.message_id or op.message_id]
            message_ids = f"CASE id {message_ids} ELSE message_id END"
        else:
            message_ids = "message_id"
        # Ids are integers we claimed; only message ids travel as parameters.
        sql = f"""
            UPDATE {self.table} SET
                status = CASE WHEN id IN ({sent_ids}) THEN %s ELSE %s END,
                sent_at = CASE WHEN id IN ({sent_ids}) THEN {self.now} ELSE sent_at END,
                message_id = {message_ids},
                last_error = CASE WHEN id IN ({sent_ids}) THEN '' ELSE last_error END,
                attempts = CASE WHEN id IN ({start_ids}) THEN attempts + 1
                    ELSE attempts END,
                claimed_at = {self.now}
            WHERE id IN ({sent_ids})
                OR (id IN ({start_ids}) AND claimed_by = %s AND status = %s)
            RETURNING id
        """  # noqa: S608 - every interpolated value is an integer or fixed SQL
        params = [
            Delivery.Status.SENT.value,
            Delivery.Status.SENDING.value,
            *params,
            self.claimant,
            Delivery.Status.QUEUED.value,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {row_id for (row_id,) in cursor.fetchall()}

    def _unsent(self, row: Claimed, outcome: Outcome, *, counted: bool) -> str:
        attempts = row.attempts + 1
        counting = {} if counted else {"attempts": F("attempts") + 1}
        if outcome.kind == TRANSIENT and attempts < settings.SENDING_MAX_ATTEMPTS:
            Delivery.objects.filter(pk=row.id).update(
                status=Delivery.Status.QUEUED,
                claimed_by="",
                claimed_at=None,
                last_error=outcome.error[:2000],
                next_attempt_at=Now() + timedelta(seconds=retry_delay(attempts)),
                **counting,
            )
            return TRANSIENT
        status = (
            Delivery.Status.BOUNCED
            if outcome.kind == BOUNCED
            else Delivery.Status.FAILED
        )
        with transaction.atomic():
            changed = (
                Delivery.objects.filter(pk=row.id)
                .exclude(status=status)
                .update(
                    status=status,
                    last_error=outcome.error[:2000],
                    claimed_at=Now(),
                    **counting,
                )
            )
            if changed and status == Delivery.Status.BOUNCED:
                # A hard bounce while sending, counted with the row's change.
                guard.count(send_id=self.send_id, refused=1)
        if outcome.kind == BOUNCED:
            suppress_address(email=row.email, reason="bounced")
        return status

    def renew_lease(self) -> None:
        """Keep this worker's claimed and in-flight rows its own while it works.

        Rows another statement holds are skipped: that statement (a mark or an
        outcome, perhaps on the marks' own connection) stamps them itself, and
        waiting for it could deadlock the two connections.
        """
        statuses = [Delivery.Status.QUEUED.value, Delivery.Status.SENDING.value]
        if connection.vendor != "postgresql":
            Delivery.objects.filter(
                claimed_by=self.claimant, status__in=statuses
            ).update(claimed_at=Now())
            return
        sql = f"""
            UPDATE {self.table} SET claimed_at = {self.now}
            WHERE id IN (
                SELECT id FROM {self.table}
                WHERE claimed_by = %s AND status IN (%s, %s)
                FOR UPDATE SKIP LOCKED
            )
        """  # noqa: S608 - the table's quoted name and fixed SQL
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.claimant, *statuses])

    def release(self, *, wait: float = 0) -> int:
        """Hand back the claimed rows this worker did not get to.

        After the mail server became unreachable they wait like a retry would,
        without using up an attempt.
        """
        return Delivery.objects.filter(
            claimed_by=self.claimant, status=Delivery.Status.QUEUED
        ).update(
            claimed_by="",
            claimed_at=None,
            next_attempt_at=(Now() + timedelta(seconds=wait)) if wait else None,
        )
