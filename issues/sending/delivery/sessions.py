"""Many mail-server sessions per worker process, and the threads that record.

Through a relay tens of milliseconds away a message costs round trips, not CPU: one
connection sending one message at a time leaves the worker idle. So a worker runs up
to ``SENDING_SMTP_SESSIONS`` sessions at once, each a thread with its own connection
(Django's SMTP backend, so TLS, login and timeouts are as configured; PIPELINING where
the server offers it) sending up to ``SENDING_MESSAGES_PER_CONNECTION`` messages
before it reconnects.

The database stays with the task's own thread (Django's connection belongs to it):
it claims batches and feeds their rows to the sessions, and writes the sessions'
marks and outcomes in groups (recording.py). On PostgreSQL the marks, and the
outcomes of the messages the server accepted, have a thread and connection of their
own, written together in one statement, so a session's mark never waits behind a
claim. A session asks for its row's "sending"
mark before MAIL and waits for the commit only before the final dot, so the mark's
round trip overlaps the SMTP ones. Before that dot it also waits until its previous
message's outcome is written, so a crash leaves at most one ambiguous row per open
session however far the writes fall behind (a slow claim, a loaded database).

Back-pressure: a 421, a 4.7.x reply or a refused connection halves the sessions
allowed against the server; every ``GROW_AFTER`` messages sent without complaint
allow one more, up to the setting.
"""

from __future__ import annotations

import contextlib
import queue
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from ..emails import PreparedEmail, Recipient, message_id_for
from ..send_rate import get_rate_limiter
from ..transports import SENT, Envelope, Outcome, SMTPTransport, Transport
from .claims import Claimed, retry_delay
from .recording import Done, Recorder, Start, fast_commits, separate_marks

# After this many failed connection attempts in a row, with no session connected,
# the server counts as unreachable: the rows go back and wait like a retry.
MAX_CONNECTION_FAILURES = 3
# Messages sent without a complaint before one more session is allowed.
GROW_AFTER = 50
# How long the recording thread waits for a mark or outcome before it looks at the
# feed and the sessions again.
_TICK = 0.005


class LeaseLost(Exception):
    """The row's lease ran out and another worker holds it now."""


@dataclass
class BatchRun:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    # The mail server could not be reached: the rest of the rows wait.
    stopped: bool = False


class SessionBudget:
    """How many sessions may talk to the server now (additive increase,
    multiplicative decrease, as TCP does)."""

    def __init__(self, most: int) -> None:
        self.most = max(1, most)
        self.allowed = self.most
        self._quiet = 0
        self._lock = threading.Lock()

    def slow_down(self) -> None:
        with self._lock:
            self.allowed = max(1, self.allowed // 2)
            self._quiet = 0

    def sent(self) -> None:
        with self._lock:
            self._quiet += 1
            if self.allowed < self.most and self._quiet >= GROW_AFTER:
                self.allowed += 1
                self._quiet = 0


@dataclass
class _Pending:
    """A row whose envelope is out (or about to be), with its mark."""

    row: Claimed
    message_id: str
    envelope: Envelope
    start: Start


class SessionPool:
    """Send rows from source() over up to `sessions` connections at once."""

    def __init__(
        self,
        *,
        send_id: int,
        prepared: dict[str, PreparedEmail],
        claimant: str,
        sessions: int,
        transport_factory: Callable[[], Transport],
        source: Callable[[], list[Claimed] | None],
        deadline: float,
    ) -> None:
        self.send_id = send_id
        self.prepared = prepared
        self.domain = next(iter(prepared.values())).message_domain
        self.transport_factory = transport_factory
        self.source = source
        self.deadline = deadline
        self.budget = SessionBudget(sessions)
        self.recorder = Recorder(claimant, send_id=send_id)
        self.limiter = get_rate_limiter()
        self.per_connection = settings.SENDING_MESSAGES_PER_CONNECTION
        self.rows: queue.Queue[Claimed] = queue.Queue()
        self.ops: queue.SimpleQueue[Start | Done] = queue.SimpleQueue()
        # On PostgreSQL the marks, and the outcomes of messages the server
        # accepted, have their own thread and connection (run()).
        self.marks: queue.SimpleQueue[Start | Done] | None = None
        # Messages that thread recorded sent.
        self._marked_sent = 0
        self._marks_end: BaseException | None = None
        self._marks_stop = threading.Event()
        self.feeding = True
        self.stopping = threading.Event()
        self.unreachable = False
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._connected: set[int] = set()
        self._out = 0
        self._connecting = 0
        self._connect_failures = 0

    # --- the recording thread (the caller's) ------------------------------------

    def run(self) -> BatchRun:
        run = BatchRun()
        threads = [
            threading.Thread(
                target=self._session, args=(n,), name=f"quire-smtp-{n}", daemon=True
            )
            for n in range(self.budget.most)
        ]
        marker = None
        if separate_marks():
            self.marks = queue.SimpleQueue()
            marker = threading.Thread(
                target=self._write_marks, name="quire-marks", daemon=True
            )
            marker.start()
        for thread in threads:
            thread.start()
        renewed = time.monotonic()
        try:
            while True:
                self._feed()
                ops = self._collect()
                if ops:
                    counts = self.recorder.write(ops)
                    run.sent += counts["sent"]
                    run.failed += counts["failed"]
                    run.retried += counts["retried"]
                if time.monotonic() - renewed > settings.SENDING_LEASE_SECONDS / 3:
                    self.recorder.renew_lease()
                    renewed = time.monotonic()
                if not any(t.is_alive() for t in threads) and self.ops.empty():
                    break
        except BaseException as exc:
            self.stopping.set()
            # No mark may pass once outcomes can no longer be recorded.
            self._marks_end = exc
            self._fail_marks(exc)
            for thread in threads:
                thread.join(30)
            raise
        finally:
            self.feeding = False
            self._marks_stop.set()
            if marker is not None:
                marker.join(30)
        run.sent += self._marked_sent
        run.stopped = self.unreachable
        self.recorder.release(wait=retry_delay(1) if self.unreachable else 0)
        if self.error is not None:
            raise self.error
        return run

    def _feed(self) -> None:
        """Keep the sessions' queue filled with claimed rows while there is time."""
        if not self.feeding:
            return
        if self.stopping.is_set() or time.monotonic() > self.deadline:
            self.feeding = False
            return
        if self.rows.qsize() >= self.budget.most:
            return
        rows = self.source()
        if rows is None:
            # The send stopped (paused): finish what is in flight, hand back the rest.
            self.feeding = False
            self.stopping.set()
        elif not rows:
            self.feeding = False
        else:
            for row in rows:
                self.rows.put(row)

    def _collect(self) -> list[Start | Done]:
        """Everything the sessions handed over since the last write."""
        try:
            ops = [self.ops.get(timeout=_TICK)]
        except queue.Empty:
            return []
        while True:
            try:
                ops.append(self.ops.get_nowait())
            except queue.Empty:
                return ops

    def _fail_marks(self, exc: BaseException, *, outcomes: bool = True) -> None:
        """Fail every mark not written, so no session lets its server accept.

        With outcomes, the recording thread's queue is emptied as well (it is
        failing; what it held is not written).
        """
        for waiting in (self.ops if outcomes else None, self.marks):
            while waiting is not None:
                try:
                    op = waiting.get_nowait()
                except queue.Empty:
                    break
                _fail(op, exc)

    # --- the marks' thread (PostgreSQL) -------------------------------------------

    def _write_marks(self) -> None:
        """Write the sessions' "sending" marks, and the outcomes of the messages
        the server accepted, on this thread's own connection: whatever arrived
        since the last write, in one statement (Recorder.advance)."""
        assert self.marks is not None
        try:
            fast_commits(True)
            while True:
                try:
                    ops = [self.marks.get(timeout=_TICK)]
                except queue.Empty:
                    if self._marks_stop.is_set():
                        return
                    continue
                while True:
                    try:
                        ops.append(self.marks.get_nowait())
                    except queue.Empty:
                        break
                if self._marks_end is not None:
                    for op in ops:
                        _fail(op, self._marks_end)
                    continue
                sent = self.recorder.advance(
                    [op for op in ops if isinstance(op, Start)],
                    [op for op in ops if isinstance(op, Done)],
                )
                with self._lock:
                    self._marked_sent += sent
        except BaseException as exc:  # noqa: BLE001 - handed to the recording thread
            with self._lock:
                self.error = self.error or exc
            self.stopping.set()
            self._marks_end = exc
            self._fail_marks(exc, outcomes=False)
        finally:
            connection.close()

    def _start(self, start: Start) -> None:
        """Hand a row's "sending" mark to whichever thread writes marks."""
        (self.ops if self.marks is None else self.marks).put(start)

    # --- the sessions -------------------------------------------------------------

    def _session(self, index: int) -> None:
        transport = self.transport_factory()
        # This session's last outcome, which must be written before the server may
        # accept the session's next message.
        last: Done | None = None
        try:
            while not self.stopping.is_set():
                if self._drained():
                    break
                # Connect only when there is work and the server has room for one
                # more session; then take rows.
                if self.rows.empty() and not self._is_open(transport):
                    self.stopping.wait(0.05)
                    continue
                if not self._connect(index, transport):
                    continue
                row = self._take(wait=True)
                if row is None:
                    continue
                if isinstance(transport, SMTPTransport) and transport.pipelining:
                    last = self._pipeline(index, transport, row, last)
                else:
                    last = self._send(transport, row, last)
                if self._spent(index, transport):
                    self._disconnect(index, transport)
        except BaseException as exc:  # noqa: BLE001 - handed to the recording thread
            with self._lock:
                self.error = self.error or exc
            self.stopping.set()
        finally:
            self._disconnect(index, transport)

    def _drained(self) -> bool:
        """Nothing left to send: no more rows coming, none queued, none out."""
        with self._lock:
            out = self._out
        return not self.feeding and self.rows.empty() and out == 0

    def _pipeline(
        self, index: int, transport: SMTPTransport, row: Claimed, last: Done | None
    ) -> Done | None:
        """Send rows over a pipelining connection, one round trip a message: each
        flight carries one message's content and the next one's envelope.

        A row is marked "sending" once its DATA is answered 354, and the mark is
        committed before its content leaves; so at any moment a session has at
        most one row that the server may have accepted unbeknown to us.
        """
        pending: _Pending | None = None
        upcoming: Claimed | None = row
        while upcoming is not None or pending is not None:
            starting = None
            if upcoming is not None:
                self.limiter.acquire()
                message_id = self._message_id(upcoming)
                envelope = transport.envelope(
                    self.prepared[upcoming.segment],
                    self._recipient(upcoming, message_id),
                )
                starting = _Pending(upcoming, message_id, envelope, Start(upcoming))
            if pending is not None:
                _await_recorded(last)
            if pending is not None and not pending.start.done.result():
                # (result() raises if the mark failed: the content never leaves.)
                # The row's lease ran out and another worker has it: drop the
                # connection, so that the open DATA is discarded, not delivered.
                transport.abort()
                self._forget(pending.row)
                if starting is not None:
                    self._give_back(starting.row)
                return last
            finished, started = transport.exchange(
                pending.envelope if pending else None,
                starting.envelope if starting else None,
            )
            if pending is not None and finished is not None:
                last = self._record(pending.row, finished, pending.message_id)
            pending = None
            if starting is not None:
                if started is None:
                    self._start(starting.start)
                    pending = starting
                else:
                    self._record(
                        starting.row, started, starting.message_id, started=False
                    )
            upcoming = self._another(index, transport, pending is not None)
        return last

    def _another(
        self, index: int, transport: SMTPTransport, busy: bool
    ) -> Claimed | None:
        """The next row for this connection, if one is ready and it may take one."""
        if self.stopping.is_set() or not transport.is_open:
            return None
        if self._over_budget(index):
            return None
        if self.per_connection and transport.messages + busy >= self.per_connection:
            return None
        return self._take(wait=not busy)

    def _take(self, *, wait: bool) -> Claimed | None:
        """A row from the queue, counted as out until recorded or given back."""
        try:
            row = self.rows.get(timeout=0.05) if wait else self.rows.get_nowait()
        except queue.Empty:
            return None
        with self._lock:
            self._out += 1
        return row

    def _give_back(self, row: Claimed) -> None:
        """A row taken but not started, for another session."""
        self.rows.put(row)
        self._forget(row)

    def _forget(self, row: Claimed) -> None:
        """A row taken that this worker will not record (no longer its own)."""
        with self._lock:
            self._out -= 1

    @staticmethod
    def _is_open(transport: Transport) -> bool:
        return not isinstance(transport, SMTPTransport) or transport.is_open

    def _message_id(self, row: Claimed) -> str:
        return message_id_for(
            delivery_id=row.id, send_id=self.send_id, domain=self.domain
        )

    @staticmethod
    def _recipient(row: Claimed, message_id: str) -> Recipient:
        return Recipient(
            email=row.email,
            name=row.name,
            token=row.token,
            message_id=message_id,
            delivery_id=row.id,
            tracking=row.tracking,
        )

    def _record(
        self, row: Claimed, outcome: Outcome, message_id: str, *, started: bool = True
    ) -> Done:
        done = Done(row, outcome, message_id, started=started)
        if self.marks is not None and outcome.kind == SENT:
            # With the next message's mark, in one statement (_write_marks).
            self.marks.put(done)
        else:
            self.ops.put(done)
        with self._lock:
            self._out -= 1
        if outcome.slow_down:
            self.budget.slow_down()
        elif outcome.kind == SENT:
            self.budget.sent()
        return done

    def _send(
        self, transport: Transport, row: Claimed, last: Done | None
    ) -> Done | None:
        self.limiter.acquire()
        message_id = self._message_id(row)
        start = Start(row)
        self._start(start)

        def marked() -> None:
            # Raises if the mark failed, or the row is another worker's now: the
            # transport then drops the connection before the server could accept
            # the message.
            _await_recorded(last)
            if not start.done.result():
                raise LeaseLost(row.id)

        try:
            outcome = transport.send(
                self.prepared[row.segment],
                self._recipient(row, message_id),
                before_accept=marked,
            )
        except LeaseLost:
            self._forget(row)
            return last
        return self._record(row, outcome, message_id)

    def _spent(self, index: int, transport: Transport) -> bool:
        """Whether the connection dropped, carried its share of messages, or is
        one more than the server wants now."""
        if not isinstance(transport, SMTPTransport):
            return False
        if not transport.is_open or self._over_budget(index):
            return True
        return bool(self.per_connection) and transport.messages >= self.per_connection

    def _over_budget(self, index: int) -> bool:
        with self._lock:
            return index in self._connected and (
                len(self._connected) > self.budget.allowed
            )

    def _connect(self, index: int, transport: Transport) -> bool:
        """Open the session's connection unless open; False when it cannot be."""
        if not isinstance(transport, SMTPTransport) or transport.is_open:
            return True
        with self._lock:
            room = len(self._connected) + self._connecting < self.budget.allowed
            self._connecting += room
        if not room:
            self.stopping.wait(0.05)
            return False
        try:
            transport.open()
        except (OSError, smtplib.SMTPException):
            transport.close()
            self.budget.slow_down()
            with self._lock:
                self._connecting -= 1
                self._connect_failures += 1
                failures = self._connect_failures
                # Unreachable only when no session is connected or still trying:
                # of twenty opened at once, a server with room for two refuses
                # eighteen before the two are through.
                alone = not self._connected and not self._connecting
                if failures >= MAX_CONNECTION_FAILURES and alone:
                    self.unreachable = True
            if self.unreachable:
                self.stopping.set()
            else:
                self.stopping.wait(min(2.0, 0.1 * 2**failures))
            return False
        with self._lock:
            self._connecting -= 1
            self._connect_failures = 0
            self._connected.add(index)
        return True

    def _disconnect(self, index: int, transport: Transport) -> None:
        with contextlib.suppress(Exception):  # a dead connection is closed anyway
            transport.close()
        with self._lock:
            self._connected.discard(index)


def _fail(op: Start | Done, exc: BaseException) -> None:
    """Tell the session waiting for op that it was not written."""
    waiting = op.done if isinstance(op, Start) else op.recorded
    if not waiting.done():
        waiting.set_exception(exc)


def _await_recorded(last: Done | None) -> None:
    """Wait until a session's previous outcome is written (raises if that failed).

    Called before the server may accept the session's next message, so at any
    moment a session has at most one accepted message not yet recorded "sent".
    """
    if last is not None:
        last.recorded.result()


def smtp_sessions() -> int:
    """Sessions a worker process opens: SENDING_SMTP_SESSIONS over SMTP, one for
    the outbox and other backends."""
    if settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":
        return max(1, settings.SENDING_SMTP_SESSIONS)
    return 1
