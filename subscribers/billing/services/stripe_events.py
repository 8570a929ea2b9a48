"""Stripe events: stored once when they arrive, applied at most once by a task."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from subscribers import services as subscriber_services
from subscribers.models import Subscriber

from .. import tasks
from ..models import STRIPE_EVENT_REQUEUE_AFTER, Membership, StripeEvent
from ..stripe_fields import as_int, object_id, timestamp
from .claims import hold_checkout
from .subscriptions import needs_proof, sync_subscription

logger = logging.getLogger(__name__)


def _queue_processing(event_pk: int) -> None:
    """Queue the event's task once the transaction commits, whatever the broker.

    Robust, unlike delay_on_commit: with the broker down the error is logged and
    the stored event waits for the reconciler (or Stripe's retry), instead of
    failing the webhook after the event was saved.
    """

    def queue() -> None:
        tasks.process_stripe_event.delay(event_pk)

    transaction.on_commit(queue, robust=True)


def record_stripe_event(
    *, payload: dict[str, Any]
) -> tuple[StripeEvent | None, bool, bool]:
    """Store a verified Stripe event once and queue its processing.

    Returns (event, created, queued). An event seen before is queued again only
    while it is still waiting to be applied (its first task may never have reached
    the broker); processing is idempotent. Types Quire does not handle are not
    stored.
    """
    if payload.get("type") not in HANDLERS:
        return None, False, False
    obj = (payload.get("data") or {}).get("object") or {}
    try:
        with transaction.atomic():
            event = StripeEvent.objects.create(
                event_id=payload["id"],
                type=payload["type"],
                object_id=str(obj.get("id", ""))[:100],
                created_at=timestamp(payload.get("created")) or timezone.now(),
                payload=payload,
            )
            _queue_processing(event.pk)
    except IntegrityError:
        # Delivered again, or several times at once: the first insert won.
        event = StripeEvent.objects.get(event_id=payload["id"])
        queued = event.status == StripeEvent.Status.RECEIVED
        if queued:
            _queue_processing(event.pk)
        return event, False, queued
    return event, True, True


def process_stripe_event(*, event_pk: int) -> StripeEvent:
    """Apply a stored Stripe event, at most once."""
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if event.status != StripeEvent.Status.RECEIVED:
            return event
        handler = HANDLERS.get(event.type)
        applied = handler is not None and handler(event.payload["data"]["object"])
        event.status = (
            StripeEvent.Status.PROCESSED if applied else StripeEvent.Status.IGNORED
        )
        event.error = ""
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "error", "processed_at"])
    return event


def record_stripe_event_failure(
    *, event_pk: int, error: str, retry_in: float = 0
) -> None:
    """Note why an event could not be applied; its task retries in retry_in seconds
    (the reconciler leaves it alone until a minute after that)."""
    StripeEvent.objects.filter(pk=event_pk).update(
        error=error[:2000],
        retry_at=timezone.now()
        + timedelta(seconds=retry_in)
        + STRIPE_EVENT_REQUEUE_AFTER,
    )


def mark_stripe_event_failed(*, event_pk: int, error: str) -> None:
    """Give up on an event after its retries; the admin can process it again."""
    StripeEvent.objects.filter(pk=event_pk, status=StripeEvent.Status.RECEIVED).update(
        status=StripeEvent.Status.FAILED, error=error[:2000]
    )


@transaction.atomic
def requeue_stripe_events(*, events) -> int:
    """Queue failed events again (admin action)."""
    pks = list(
        events.filter(status=StripeEvent.Status.FAILED).values_list("pk", flat=True)
    )
    StripeEvent.objects.filter(pk__in=pks).update(
        status=StripeEvent.Status.RECEIVED,
        retry_at=timezone.now() + STRIPE_EVENT_REQUEUE_AFTER,
    )
    for pk in pks:
        _queue_processing(pk)
    return len(pks)


# At most this many events are queued again per reconciler run (once a minute), so
# a long outage drains in steps rather than flooding the workers.
REQUEUE_LIMIT = 500


@transaction.atomic
def requeue_stuck_stripe_events(
    *, now: datetime | None = None, limit: int = REQUEUE_LIMIT
) -> int:
    """Queue again the events still waiting past their retry time; return how many.

    Their task never reached the broker (it was down), or the message was lost.
    Each gets a new retry time, so an event is queued at most once a minute.
    """
    now = now or timezone.now()
    pks = list(
        StripeEvent.objects.stuck(now=now)
        .order_by("retry_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    StripeEvent.objects.filter(pk__in=pks).update(
        retry_at=now + STRIPE_EVENT_REQUEUE_AFTER
    )
    for pk in pks:
        _queue_processing(pk)
    if pks:
        logger.warning("Queued %d Stripe events again that were not applied", len(pks))
    return len(pks)


# --- One handler per event type ---------------------------------------------------
# Each takes the event's object and returns whether it changed anything (else the
# event is stored as ignored). Every subscription-changing event re-reads the
# subscription from Stripe, so the membership ends as Stripe's current state
# whatever order the events arrive in.


def _checkout_session_completed(session: dict[str, Any]) -> bool:
    if session.get("mode") != "subscription" or not session.get("subscription"):
        return False
    subscriber_id = as_int(session.get("client_reference_id"))
    subscriber = (
        Subscriber.objects.filter(pk=subscriber_id).first()
        if subscriber_id is not None
        else None
    )
    if subscriber is None:
        logger.warning("Checkout %s names no known subscriber", session.get("id"))
        return False
    subscription_id = object_id(session["subscription"])
    metadata = session.get("metadata") or {}
    if needs_proof(
        subscriber=subscriber, subscription_id=subscription_id, metadata=metadata
    ):
        # Paid without signing in, for an address that is someone's already: held
        # until the address's owner confirms by the emailed link.
        hold_checkout(
            subscriber=subscriber,
            session_id=session["id"],
            subscription_id=subscription_id,
            customer_id=object_id(session.get("customer")),
            tier_id=as_int(metadata.get("tier_id")),
        )
        return True
    # Paying through Checkout with a new address confirms it, as the link in the
    # confirmation email would; someone who left or was suppressed since the
    # checkout began stays as they are.
    subscriber = subscriber_services.confirm_subscription(subscriber=subscriber)
    return sync_subscription(
        subscription_id=subscription_id,
        subscriber=subscriber,
        customer_id=object_id(session.get("customer")),
    )


def _subscription_changed(subscription: dict[str, Any]) -> bool:
    return sync_subscription(
        subscription_id=subscription["id"],
        customer_id=object_id(subscription.get("customer")),
        metadata=subscription.get("metadata") or {},
    )


def _invoice_subscription_id(invoice: dict[str, Any]) -> str:
    # API versions before 2025-03 put it on the invoice, later ones under parent.
    sub = invoice.get("subscription")
    if not sub:
        details = (invoice.get("parent") or {}).get("subscription_details") or {}
        sub = details.get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    return sub or ""


def _invoice_paid(invoice: dict[str, Any]) -> bool:
    subscription_id = _invoice_subscription_id(invoice)
    if not subscription_id:
        return False
    return sync_subscription(
        subscription_id=subscription_id,
        customer_id=object_id(invoice.get("customer")),
    )


def _invoice_payment_failed(invoice: dict[str, Any]) -> bool:
    applied = _invoice_paid(invoice)
    subscription_id = _invoice_subscription_id(invoice)
    if not subscription_id:
        return applied
    membership = Membership.objects.filter(
        stripe_subscription_id=subscription_id
    ).first()
    if membership is None:
        return applied
    attempt = f"{invoice.get('id')}:{invoice.get('attempt_count', 0)}"
    if membership.last_failed_invoice_attempt != attempt:
        membership.last_failed_invoice_attempt = attempt
        membership.save(update_fields=["last_failed_invoice_attempt", "updated"])
        # The app's tasks are DjangoTasks; the stubs type shared_task as Task.
        tasks.send_billing_email.delay_on_commit(  # type: ignore[attr-defined]
            membership.pk,
            "payment_failed",
            {"hosted_invoice_url": invoice.get("hosted_invoice_url") or ""},
        )
    return applied


# Every event type Quire handles, and its handler; others are never stored.
HANDLERS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "checkout.session.completed": _checkout_session_completed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
}
