"""Sending through a provider's API: several batch calls in flight, set-based records.

The task's own thread does every database step (claims, marks, outcomes); a thread
pool of SENDING_PROVIDER_CALLS threads only makes the HTTP calls, since Django's
database connection belongs to the thread that opened it. Before a call its rows
are marked "sending" in one committed UPDATE, so a message the provider accepted
always has its row marked first; a worker that dies with calls in flight leaves
those rows "sending" for the reconciler (bookkeeping.py), which queues them again
flagged as possible duplicates. After the answer each recipient's outcome is
recorded in a few UPDATEs, grouped by outcome: only the recipients the provider
refused for now, or the rows of a whole call it turned down (429, 5xx, no answer),
are tried again. A call refused whole with another 4xx goes again one recipient per
call, so that one bad address fails alone.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.db.models.functions import Now

from subscribers.services import suppress_address

from .. import guard
from ..emails import PreparedEmail, Recipient, message_id_for
from ..models import Delivery
from ..provider_batches import CallResult, ProviderClient
from ..send_rate import get_rate_limiter
from ..transports import BOUNCED, SENT, TRANSIENT, Outcome
from .claims import Claimed, among, claim_batch, retry_delay

# Rows per UPDATE that sets a different value on each (a CASE per row).
CASE_CHUNK = 250


@dataclass
class ProviderRun:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    calls: int = 0
    # The send stopped sending (paused, or not "sending" any more).
    stopped: bool = False


@dataclass
class Call:
    """One API call's rows: one segment, at most the provider's batch size."""

    segment: str
    rows: list[Claimed]
    recipients: list[Recipient] = field(default_factory=list)
    # Its rows are marked "sending" already (a call split after a refusal).
    marked: bool = False
    # Its recipients all allow tracking: the merged body with the pixel and tracked
    # links (a call of one recipient's own message is tracked by the recipient).
    tracked: bool = False
    # No other call's rows lie between its first and last (see _span).
    contiguous: bool = True


def _calls_for(
    rows: list[Claimed], client: ProviderClient, send_id: int, domain: str
) -> list[Call]:
    """Split claimed rows into calls: per segment and whether its recipients are
    tracked, batch size, one address each."""
    size = max(1, client.style.batch_size)
    calls: list[Call] = []
    open_calls: dict[tuple[str, bool], tuple[Call, set[str]]] = {}
    for row in rows:
        recipient = Recipient(
            email=row.email,
            name=row.name,
            token=row.token,
            message_id=message_id_for(
                delivery_id=row.id, send_id=send_id, domain=domain
            ),
            delivery_id=row.id,
            tracking=row.tracking,
        )
        tracked = recipient.tracked and client.merges(row.segment, tracked=True)
        if not client.merges(row.segment, tracked):
            calls.append(Call(row.segment, [row], [recipient]))
            continue
        key = (row.segment, tracked)
        current = open_calls.get(key)
        address = row.email.lower()
        # A batch holds each address once: merge data is keyed by address.
        if current is None or len(current[0].rows) >= size or address in current[1]:
            current = (Call(row.segment, [], tracked=tracked), set())
            open_calls[key] = current
            calls.append(current[0])
        current[0].rows.append(row)
        current[0].recipients.append(recipient)
        current[1].add(address)
    # A segment's tracked and untracked calls interleave: their rows go by id.
    both = {segment for segment, tracked in open_calls if tracked} & {
        segment for segment, tracked in open_calls if not tracked
    }
    for call in calls:
        if call.segment in both and len(call.rows) > 1:
            call.contiguous = False
    return calls


def _span(call: Call, claimant: str, status: str) -> QuerySet[Delivery]:
    """Return the call's rows in that status by their pk range, without a list.

    A call holds consecutive claimed rows of one segment, so while no other call of
    that segment with an overlapping range is in the same state, the range selects
    exactly its rows (a thousand ids would cost more to send than the update).
    A call whose range holds another call's rows selects its own by their ids.
    """
    if not call.contiguous:
        return Delivery.objects.filter(
            among([row.id for row in call.rows]), claimed_by=claimant, status=status
        )
    return Delivery.objects.filter(
        claimed_by=claimant,
        status=status,
        segment=call.segment,
        pk__gte=call.rows[0].id,
        pk__lte=call.rows[-1].id,
    )


def _overlaps(call: Call, others) -> bool:
    first, last = call.rows[0].id, call.rows[-1].id
    return any(
        other.segment == call.segment
        and other.rows[0].id <= last
        and first <= other.rows[-1].id
        for other in others
    )


def _mark_sending(call: Call, claimant: str) -> None:
    """Mark the call's rows sending, committed before the call goes out."""
    # Only this call's rows are queued in its range: rows of earlier calls are
    # sending or done, those of later calls lie beyond it.
    marked = _span(call, claimant, Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENDING, attempts=F("attempts") + 1, claimed_at=Now()
    )
    if marked == len(call.rows):
        return
    # The reconciler freed some (our lease ran out): send only the rows still ours.
    ids = [row.id for row in call.rows]
    ours = set(
        Delivery.objects.filter(
            pk__in=ids, claimed_by=claimant, status=Delivery.Status.SENDING
        ).values_list("pk", flat=True)
    )
    kept = [
        (row, r)
        for row, r in zip(call.rows, call.recipients, strict=True)
        if row.id in ours
    ]
    call.rows = [row for row, _ in kept]
    call.recipients = [r for _, r in kept]


def _update_sent(
    call: Call, rows: list[tuple[Claimed, str]], claimant: str, alone: bool
) -> int:
    """Mark rows sent and return how many; alone: no other call in flight overlaps
    this one's range."""
    by_id: dict[str, list[int]] = {}
    for row, message_id in rows:
        by_id.setdefault(message_id, []).append(row.id)
    done = {"status": Delivery.Status.SENT, "sent_at": Now(), "last_error": ""}
    if len(by_id) == 1 and alone and len(rows) == len(call.rows):
        # One id for the whole call (Mailgun), every row of it accepted.
        (message_id,) = by_id
        return _span(call, claimant, Delivery.Status.SENDING).update(
            message_id=message_id, **done
        )
    if len(by_id) <= 3:
        return sum(
            Delivery.objects.filter(pk__in=ids).update(message_id=message_id, **done)
            for message_id, ids in by_id.items()
        )
    updated = 0
    for start in range(0, len(rows), CASE_CHUNK):
        chunk = rows[start : start + CASE_CHUNK]
        updated += Delivery.objects.filter(pk__in=[row.id for row, _ in chunk]).update(
            message_id=Case(
                *(When(pk=row.id, then=Value(message_id)) for row, message_id in chunk),
                default=F("message_id"),
            ),
            **done,
        )
    return updated


def _update_errors(rows: list[tuple[Claimed, Outcome]], status: str) -> int:
    by_error: dict[str, list[int]] = {}
    for row, outcome in rows:
        by_error.setdefault(outcome.error[:2000], []).append(row.id)
    return sum(
        Delivery.objects.filter(pk__in=ids)
        .exclude(status=status)
        .update(status=status, last_error=error, claimed_at=Now())
        for error, ids in by_error.items()
    )


def _update_retries(rows: list[tuple[Claimed, Outcome]], wait_at_least: float) -> None:
    """Queue rows again after their backoff (and at least wait_at_least seconds),
    on the database's clock like every other time sending writes."""
    groups: dict[tuple[int, str], list[int]] = {}
    for row, outcome in rows:
        groups.setdefault((row.attempts + 1, outcome.error[:2000]), []).append(row.id)
    for (attempts, error), ids in groups.items():
        delay = max(retry_delay(attempts), wait_at_least)
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.QUEUED,
            claimed_by="",
            claimed_at=None,
            last_error=error,
            next_attempt_at=Now() + timedelta(seconds=delay),
        )


def record_call(
    call: Call,
    result: CallResult,
    run: ProviderRun,
    *,
    send_id: int,
    claimant: str,
    alone: bool = False,
) -> str | None:
    """Record each recipient's outcome of one call, grouped into few UPDATEs.

    alone: no other call of the same segment whose range overlaps is in flight.
    The accepted and hard-bounced emails are counted for the deliverability guard
    in the same transaction; returns the reason if that paused the send.
    """
    sent: list[tuple[Claimed, str]] = []
    retry: list[tuple[Claimed, Outcome]] = []
    failed: list[tuple[Claimed, Outcome]] = []
    bounced: list[tuple[Claimed, Outcome]] = []
    for row, recipient in zip(call.rows, call.recipients, strict=True):
        outcome = result.outcomes.get(row.email.lower()) or Outcome(
            TRANSIENT, "The provider's answer did not name this address."
        )
        if outcome.kind == SENT:
            sent.append((row, outcome.message_id or recipient.message_id))
        elif (
            outcome.kind == TRANSIENT
            and row.attempts + 1 < settings.SENDING_MAX_ATTEMPTS
        ):
            retry.append((row, outcome))
        elif outcome.kind == BOUNCED:
            bounced.append((row, outcome))
        else:
            failed.append((row, outcome))
    with transaction.atomic():
        if retry:
            _update_retries(retry, result.retry_after)
        if failed:
            _update_errors(failed, Delivery.Status.FAILED)
        refused = _update_errors(bounced, Delivery.Status.BOUNCED) if bounced else 0
        accepted = _update_sent(call, sent, claimant, alone) if sent else 0
        paused = guard.count(send_id=send_id, accepted=accepted, refused=refused)
    for row, _outcome in bounced:
        suppress_address(email=row.email, reason="bounced")
    run.sent += len(sent)
    run.retried += len(retry)
    run.failed += len(failed) + len(bounced)
    return paused


def _refused_whole(result: CallResult) -> bool:
    """Return whether the provider refused the call itself (a 4xx other than 429)."""
    status = result.status_code
    return status is not None and 400 <= status < 500 and status != 429


def _split(call: Call) -> list[Call]:
    """Return the call as one call per recipient, its rows still marked sending.

    One bad address makes some providers refuse the whole call (Mailgun answers 400
    for any invalid recipient); sent alone, only that recipient fails.
    """
    return [
        Call(call.segment, [row], [recipient], marked=True, tracked=call.tracked)
        for row, recipient in zip(call.rows, call.recipients, strict=True)
    ]


def _release(claimant: str) -> None:
    """Hand back claimed rows no call took (they keep their attempts)."""
    Delivery.objects.filter(claimed_by=claimant, status=Delivery.Status.QUEUED).update(
        claimed_by="", claimed_at=None
    )


def send_through_provider(
    *,
    send_id: int,
    prepared: dict[str, PreparedEmail],
    claimant: str,
    deadline: float,
) -> ProviderRun:
    """Send the send's queued rows in provider batch calls until deadline."""
    run = ProviderRun()
    client = ProviderClient(prepared)
    in_flight = max(1, settings.SENDING_PROVIDER_CALLS)
    # Batches of one (no merge fields) still claim enough rows for every thread.
    claim_size = max(client.style.batch_size, in_flight)
    if not any(client.merges(segment) for segment in prepared):
        claim_size = max(claim_size, settings.SENDING_BATCH_SIZE)
    domain = next(iter(prepared.values())).message_domain
    limiter = get_rate_limiter()
    lease_renewal = settings.SENDING_LEASE_SECONDS / 3
    renewed = time.monotonic()
    waiting: deque[Call] = deque()
    flying: dict[Future[CallResult], Call] = {}
    # No more claims: nothing is left to claim now, or the send stopped.
    exhausted = False
    try:
        with ThreadPoolExecutor(
            max_workers=in_flight, thread_name_prefix="quire-provider"
        ) as pool:
            while True:
                while len(flying) < in_flight:
                    if time.monotonic() >= deadline:
                        # Time is up: rows not yet in a call are handed back.
                        break
                    if not waiting:
                        if exhausted:
                            break
                        rows = claim_batch(
                            send_id=send_id, claimant=claimant, size=claim_size
                        )
                        if not rows:
                            run.stopped = rows is None
                            exhausted = True
                            break
                        renewed = time.monotonic()
                        waiting.extend(_calls_for(rows, client, send_id, domain))
                        continue
                    call = waiting.popleft()
                    if not call.marked:
                        for _ in call.rows:
                            limiter.acquire()
                        _mark_sending(call, claimant)
                    if call.rows:
                        run.calls += 1
                        future = pool.submit(
                            client.send,
                            prepared[call.segment],
                            call.recipients,
                            tracked=call.tracked,
                        )
                        flying[future] = call
                if not flying:
                    break
                done, _ = wait(
                    flying, timeout=lease_renewal, return_when=FIRST_COMPLETED
                )
                for future in done:
                    call = flying.pop(future)
                    result = future.result()
                    if len(call.rows) > 1 and _refused_whole(result):
                        waiting.extendleft(reversed(_split(call)))
                        continue
                    alone = not _overlaps(call, flying.values())
                    if record_call(
                        call, result, run, send_id=send_id, claimant=claimant,
                        alone=alone,
                    ):  # fmt: skip
                        # The guard paused the send: no more calls, but the rows
                        # marked sending (split calls) still go; the others are
                        # handed back below.
                        exhausted = run.stopped = True
                        waiting = deque(c for c in waiting if c.marked)
                if waiting and time.monotonic() - renewed > lease_renewal:
                    # Keep the claimed rows not yet handed to a call ours.
                    Delivery.objects.filter(
                        claimed_by=claimant, status=Delivery.Status.QUEUED
                    ).update(claimed_at=Now())
                    renewed = time.monotonic()
    finally:
        client.close()
        _release(claimant)
    return run
