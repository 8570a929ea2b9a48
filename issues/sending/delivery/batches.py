"""A worker's loop over a send's batches, and sending one claimed batch.

The sending itself is delivery/sessions.py: many connections at once, fed with the
rows claimed here, outcomes recorded in groups by the task's own thread.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from ..emails import PreparedEmail
from ..models import Delivery, Send
from ..provider_batches import through_provider
from ..transports import Transport, open_transport
from .bookkeeping import finish_send_if_complete, refresh_counts
from .claims import Claimed, claim_batch, worker_name
from .clock import database_now
from .preparing import PAUSED, STOPPED, prepared_for
from .provider_sending import send_through_provider
from .recording import recording_session
from .sessions import BatchRun, SessionPool, smtp_sessions

# Seconds a batch task waits while another process renders the send's email.
RENDERING_WAIT = 3.0


def send_batch(
    *,
    send_id: int,
    rows: list[Claimed],
    prepared: dict[str, PreparedEmail],
    transport: Transport,
    claimant: str,
) -> BatchRun:
    """Send rows already claimed by claimant over one transport, recording each
    outcome as it comes."""
    batches = [rows]
    with recording_session():
        return SessionPool(
            send_id=send_id,
            prepared=prepared,
            claimant=claimant,
            sessions=1,
            transport_factory=lambda: transport,
            source=lambda: batches.pop() if batches else [],
            deadline=float("inf"),
        ).run()


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
    stopped = False

    def next_batch() -> list[Claimed] | None:
        nonlocal stopped
        rows = claim_batch(
            send_id=send_id, claimant=claimant, size=settings.SENDING_BATCH_SIZE
        )
        stopped = stopped or rows is None
        return rows

    with recording_session():
        run = SessionPool(
            send_id=send_id,
            prepared=prepared,
            claimant=claimant,
            sessions=smtp_sessions(),
            transport_factory=open_transport,
            source=next_batch,
            deadline=deadline,
        ).run()
    result.sent, result.failed, result.retried = run.sent, run.failed, run.retried
    if stopped:
        refresh_counts(send_id=send_id)
        result.next = "stopped"
        return result
    refresh_counts(send_id=send_id)
    return _what_next(send_id, result)


def _what_next(send_id: int, result: LoopResult) -> LoopResult:
    now = database_now()
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
