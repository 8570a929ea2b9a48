"""PostgreSQL only: commits that skip the WAL flush wait, and pipelined marks."""

from __future__ import annotations

from django.db import DatabaseError, connection


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


# Prepared once per database session: the per-message statement then skips parsing
# and planning, which cost PostgreSQL more than the update itself.
_STATEMENTS = {
    b"quire_delivery_advance": _ADVANCE_PG,
    b"quire_delivery_start": _START_PG,
}
_DUPLICATE_PREPARED_STATEMENT = b"42P05"


def _prepare(pgconn) -> None:
    from psycopg import pq

    for name, sql in _STATEMENTS.items():
        result = pgconn.prepare(name, sql)
        if result.status == pq.ExecStatus.COMMAND_OK:
            continue
        # A session reused from an earlier task already has them.
        state = result.error_field(pq.DiagnosticField.SQLSTATE)
        if state != _DUPLICATE_PREPARED_STATEMENT:
            raise DatabaseError(result.error_message.decode(errors="replace"))


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
        from psycopg import pq

        self.pending = False
        error = None
        while (result := self.pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK:
                error = result.error_message.decode(errors="replace")
        if error:
            raise DatabaseError(error)
