"""Sending a claimed batch over one connection, and a worker's loop over batches."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..emails import PreparedEmail, Recipient
from ..models import Delivery, Send
from ..provider_batches import through_provider
from ..send_rate import get_rate_limiter
from ..transports import SENT, TRANSIENT, Transport, open_transport
from .bookkeeping import finish_send_if_complete, refresh_counts
from .claims import Claimed, claim_batch, retry_delay, worker_name
from .preparing import PAUSED, STOPPED, prepared_for
from .provider_sending import send_through_provider
from .recording import PgMarks, Recorder, recording_session

# After this many connection failures in a row a batch stops and waits.
MAX_CONNECTION_FAILURES = 3
# Seconds a batch task waits while another process renders the send's email.
RENDERING_WAIT = 3.0


@dataclass
class BatchRun:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    stopped: bool = False


def send_batch(
    *,
    send_id: int,
    rows: list[Claimed],
    prepared: dict[str, PreparedEmail],
    transport: Transport,
    claimant: str,
    marks: PgMarks | None = None,
) -> BatchRun:
    """Send claimed rows over the transport, recording each outcome at once."""
    run = BatchRun()
    domain = next(iter(prepared.values())).message_domain
    recorder = Recorder(claimant, domain, send_id, marks)
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
    ready = prepared_for(send)
    if ready.state in (PAUSED, STOPPED):
        result.next = "stopped"
        return result
    if ready.emails is None:
        result.next = "wait"
        result.wait = RENDERING_WAIT
        return result
    prepared = ready.emails
    claimant = f"{worker_name()}:{secrets.token_hex(4)}"
    deadline = time.monotonic() + time_budget
    if through_provider():
        run = send_through_provider(
            send_id=send_id, prepared=prepared, claimant=claimant, deadline=deadline
        )
        result.sent, result.failed, result.retried = run.sent, run.failed, run.retried
        refresh_counts(send_id=send_id)
        if run.stopped:
            result.next = "stopped"
            return result
        return _what_next(send_id, result)
    with recording_session() as marks, open_transport() as transport:
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
    refresh_counts(send_id=send_id)
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
    if finish_send_if_complete(send_id=send_id):
        result.next = "done"
    return result
