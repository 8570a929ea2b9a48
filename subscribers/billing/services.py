"""Every write of paid tiers: checkout, portal, Stripe events, complimentary grants."""

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from subscribers.models import Subscriber

from . import stripe_api, tasks
from .models import Membership, StripeEvent, Tier

logger = logging.getLogger(__name__)

HANDLED_EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
ENDED_STATUSES = frozenset(
    {
        Membership.Status.CANCELED,
        Membership.Status.UNPAID,
        Membership.Status.INCOMPLETE_EXPIRED,
    }
)
LIVE_STATUSES = frozenset(
    {
        Membership.Status.ACTIVE,
        Membership.Status.TRIALING,
        Membership.Status.PAST_DUE,
    }
)


def _timestamp(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


# --- Checkout and portal -------------------------------------------------------------


def subscriber_for_checkout(*, email: str) -> tuple[Subscriber, bool]:
    """Return the subscriber paying with this address, creating a pending one."""
    email = email.strip().lower()
    try:
        with transaction.atomic():
            return Subscriber.objects.get_or_create(
                email=email,
                defaults={"status": Subscriber.Status.PENDING},
            )
    except IntegrityError:
        return Subscriber.objects.get(email=email), False


def create_checkout_session(
    *,
    tier: Tier,
    interval: str,
    subscriber: Subscriber,
    success_url: str,
    cancel_url: str,
    amount: int | None = None,
) -> dict[str, Any]:
    """Create a Stripe Checkout Session for the tier and return it (id and url)."""
    if interval not in tier.intervals:
        raise ValueError(f"{tier} has no {interval}ly price.")
    membership = Membership.objects.filter(subscriber=subscriber).first()
    metadata = {
        "subscriber_id": str(subscriber.pk),
        "tier_id": str(tier.pk),
        "interval": interval,
    }
    if tier.is_founding:
        if not tier.stripe_product_id:
            raise ValueError(
                f"{tier} has no Stripe product yet: run manage.py sync_stripe_tiers."
            )
        minimum = tier.yearly_amount or 0
        if amount is None or amount < minimum:
            raise ValueError("A founding member pays at least the yearly price.")
        line_item: dict[str, Any] = {
            "quantity": 1,
            "price_data": {
                "currency": tier.currency,
                "product": tier.stripe_product_id,
                "unit_amount": amount,
                "recurring": {"interval": "year"},
            },
        }
    else:
        price_id = tier.price_id_for(interval)
        if not price_id:
            raise ValueError(
                f"{tier} has no Stripe price yet: run manage.py sync_stripe_tiers."
            )
        line_item = {"price": price_id, "quantity": 1}
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [line_item],
        "client_reference_id": str(subscriber.pk),
        "allow_promotion_codes": True,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    if tier.trial_days:
        params["subscription_data"]["trial_period_days"] = tier.trial_days
    if membership and membership.stripe_customer_id:
        params["customer"] = membership.stripe_customer_id
    else:
        params["customer_email"] = subscriber.email
    session = stripe_api.client().v1.checkout.sessions.create(params=params)
    return {"id": session.id, "url": session.url}


def cancel_subscription_for_erasure(*, subscriber: Subscriber) -> bool:
    """Cancel the subscriber's Stripe subscription at once, before their record goes.

    Return whether a subscription was cancelled. A Stripe error propagates, so the
    caller erases nothing while Stripe would go on charging the person.
    """
    membership = Membership.objects.filter(subscriber=subscriber).first()
    if membership is None or not membership.stripe_subscription_id:
        return False
    if membership.status in (Membership.Status.CANCELED,):
        return False
    stripe_api.client().v1.subscriptions.cancel(membership.stripe_subscription_id)
    return True


def create_portal_session(*, membership: Membership, return_url: str) -> str:
    """Open a Stripe customer portal session and return its URL."""
    if not membership.stripe_customer_id:
        raise ValueError("This membership has no Stripe customer.")
    session = stripe_api.client().v1.billing_portal.sessions.create(
        params={"customer": membership.stripe_customer_id, "return_url": return_url}
    )
    return session.url


# --- Stripe events -------------------------------------------------------------------


def record_stripe_event(*, payload: dict[str, Any]) -> tuple[StripeEvent | None, bool]:
    """Store a verified Stripe event once and queue its processing.

    Returns (event, created); an event seen before is returned with created False and
    nothing is queued again. Types Quire does not handle are not stored.
    """
    if payload.get("type") not in HANDLED_EVENT_TYPES:
        return None, False
    obj = (payload.get("data") or {}).get("object") or {}
    try:
        with transaction.atomic():
            event = StripeEvent.objects.create(
                event_id=payload["id"],
                type=payload["type"],
                object_id=str(obj.get("id", ""))[:100],
                created_at=_timestamp(payload.get("created")) or timezone.now(),
                payload=payload,
            )
            tasks.process_stripe_event.delay_on_commit(event.pk)
    except IntegrityError:
        # Delivered again, or several times at once: the first insert won.
        return StripeEvent.objects.get(event_id=payload["id"]), False
    return event, True


def process_stripe_event(*, event_pk: int) -> StripeEvent:
    """Apply a stored Stripe event, at most once."""
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if event.status != StripeEvent.Status.RECEIVED:
            return event
        handler = StripeEventHandler(event)
        handler.handle()
        event.status = (
            StripeEvent.Status.PROCESSED
            if handler.applied
            else StripeEvent.Status.IGNORED
        )
        event.error = ""
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "error", "processed_at"])
    return event


def record_stripe_event_failure(*, event_pk: int, error: str) -> None:
    """Note why an event could not be applied (it stays queued for a retry)."""
    StripeEvent.objects.filter(pk=event_pk).update(error=error[:2000])


def mark_stripe_event_failed(*, event_pk: int, error: str) -> None:
    """Give up on an event after its retries; the admin can process it again."""
    StripeEvent.objects.filter(pk=event_pk, status=StripeEvent.Status.RECEIVED).update(
        status=StripeEvent.Status.FAILED, error=error[:2000]
    )


def requeue_stripe_events(*, events) -> int:
    """Queue failed events again (admin action)."""
    pks = list(
        events.filter(status=StripeEvent.Status.FAILED).values_list("pk", flat=True)
    )
    StripeEvent.objects.filter(pk__in=pks).update(status=StripeEvent.Status.RECEIVED)
    for pk in pks:
        tasks.process_stripe_event.delay_on_commit(pk)
    return len(pks)


def _invoice_subscription_id(invoice: dict[str, Any]) -> str:
    # API versions before 2025-03 put it on the invoice, later ones under parent.
    sub = invoice.get("subscription")
    if not sub:
        details = (invoice.get("parent") or {}).get("subscription_details") or {}
        sub = details.get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    return sub or ""


class StripeEventHandler:
    """One method per event type. Every subscription-changing event re-reads the
    subscription from Stripe, so the membership ends as Stripe's current state
    whatever order the events arrive in."""

    def __init__(self, event: StripeEvent):
        self.event = event
        self.obj: dict[str, Any] = event.payload["data"]["object"]
        self.applied = False

    def handle(self) -> None:
        method = getattr(self, self.event.type.replace(".", "_"), None)
        if method is not None:
            method()

    def checkout_session_completed(self) -> None:
        if self.obj.get("mode") != "subscription" or not self.obj.get("subscription"):
            return
        subscriber = Subscriber.objects.filter(
            pk=_as_int(self.obj.get("client_reference_id"))
        ).first()
        if subscriber is None:
            logger.warning("Checkout %s names no known subscriber", self.obj.get("id"))
            return
        if subscriber.status == Subscriber.Status.PENDING:
            # Paying through Checkout with this address confirms it.
            subscriber.status = Subscriber.Status.ACTIVE
            subscriber.confirmed_at = subscriber.confirmed_at or timezone.now()
            subscriber.save(update_fields=["status", "confirmed_at"])
        self.applied = sync_subscription(
            subscription_id=_object_id(self.obj["subscription"]),
            subscriber=subscriber,
            customer_id=_object_id(self.obj.get("customer")),
        )

    def _subscription_event(self) -> None:
        self.applied = sync_subscription(
            subscription_id=self.obj["id"],
            customer_id=_object_id(self.obj.get("customer")),
            metadata=self.obj.get("metadata") or {},
        )

    customer_subscription_created = _subscription_event
    customer_subscription_updated = _subscription_event
    customer_subscription_deleted = _subscription_event

    def invoice_paid(self) -> None:
        subscription_id = _invoice_subscription_id(self.obj)
        if subscription_id:
            self.applied = sync_subscription(
                subscription_id=subscription_id,
                customer_id=_object_id(self.obj.get("customer")),
            )

    def invoice_payment_failed(self) -> None:
        subscription_id = _invoice_subscription_id(self.obj)
        if not subscription_id:
            return
        self.applied = sync_subscription(
            subscription_id=subscription_id,
            customer_id=_object_id(self.obj.get("customer")),
        )
        membership = Membership.objects.filter(
            stripe_subscription_id=subscription_id
        ).first()
        if membership is None:
            return
        attempt = f"{self.obj.get('id')}:{self.obj.get('attempt_count', 0)}"
        if membership.last_failed_invoice_attempt != attempt:
            membership.last_failed_invoice_attempt = attempt
            membership.save(update_fields=["last_failed_invoice_attempt", "updated"])
            tasks.send_billing_email.delay_on_commit(
                membership.pk,
                "payment_failed",
                {"hosted_invoice_url": self.obj.get("hosted_invoice_url") or ""},
            )


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _object_id(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def _find_membership(
    *,
    subscription_id: str,
    subscriber: Subscriber | None,
    customer_id: str,
    metadata: dict[str, Any],
) -> Membership | None:
    """Return the locked membership a subscription belongs to, creating it when
    the subscriber is known; None when nothing names a subscriber."""
    membership = Membership.objects.filter(
        stripe_subscription_id=subscription_id
    ).first()
    if membership is None and subscriber is None:
        subscriber = Subscriber.objects.filter(
            pk=_as_int(metadata.get("subscriber_id"))
        ).first()
    if membership is None and subscriber is None and customer_id:
        membership = Membership.objects.filter(stripe_customer_id=customer_id).first()
    if membership is None and subscriber is not None:
        membership, _ = Membership.objects.get_or_create(subscriber=subscriber)
    if membership is None:
        return None
    return Membership.objects.select_for_update().get(pk=membership.pk)


def sync_subscription(
    *,
    subscription_id: str,
    subscriber: Subscriber | None = None,
    customer_id: str = "",
    metadata: dict[str, Any] | None = None,
) -> bool:
    """Make the membership match Stripe's current subscription; return whether a
    membership was found to update.

    The membership row is locked before Stripe is asked, so of two events handled at
    once the one that writes last also read last: the newest state always wins.
    """
    with transaction.atomic():
        membership = _find_membership(
            subscription_id=subscription_id,
            subscriber=subscriber,
            customer_id=customer_id,
            metadata=metadata or {},
        )
        if membership is None:
            logger.warning("Subscription %s names no known subscriber", subscription_id)
            return False
        fetched_at = timezone.now()
        subscription = (
            stripe_api.client().v1.subscriptions.retrieve(subscription_id).to_dict()
        )
        apply_subscription(
            membership=membership, subscription=subscription, fetched_at=fetched_at
        )
    return True


def _tier_for(subscription: dict[str, Any], price: dict[str, Any]) -> Tier | None:
    price_id = price.get("id") or ""
    tier = None
    if price_id:
        tier = Tier.objects.filter(stripe_monthly_price_id=price_id).first() or (
            Tier.objects.filter(stripe_yearly_price_id=price_id).first()
        )
    tier_id = _as_int((subscription.get("metadata") or {}).get("tier_id"))
    if tier is None and tier_id:
        tier = Tier.objects.filter(pk=tier_id).first()
    product = _object_id(price.get("product"))
    if tier is None and product:
        tier = Tier.objects.filter(stripe_product_id=product).first()
    return tier


def apply_subscription(
    *, membership: Membership, subscription: dict[str, Any], fetched_at: datetime
) -> Membership:
    """Write a subscription as read from Stripe onto its (locked) membership."""
    if (
        membership.stripe_synced_at
        and membership.stripe_synced_at > fetched_at
        and membership.stripe_subscription_id == subscription["id"]
    ):
        return membership  # a newer read of the same subscription is already here
    new_status = subscription.get("status") or ""
    if (
        membership.stripe_subscription_id
        and membership.stripe_subscription_id != subscription["id"]
        and membership.status in LIVE_STATUSES
        and new_status not in LIVE_STATUSES
    ):
        # An old subscription ending does not end the member's current one.
        return membership
    previous_status = membership.status
    items = (subscription.get("items") or {}).get("data") or [{}]
    item = items[0]
    price = item.get("price") or {}
    recurring = price.get("recurring") or {}
    membership.stripe_subscription_id = subscription["id"]
    membership.stripe_customer_id = (
        _object_id(subscription.get("customer")) or membership.stripe_customer_id
    )
    membership.status = new_status
    membership.tier = _tier_for(subscription, price) or membership.tier
    membership.stripe_price_id = price.get("id") or ""
    membership.amount = price.get("unit_amount")
    membership.currency = price.get("currency") or ""
    membership.interval = recurring.get("interval") or ""
    membership.current_period_end = _timestamp(
        item.get("current_period_end") or subscription.get("current_period_end")
    )
    membership.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    membership.stripe_synced_at = fetched_at
    if new_status == Membership.Status.PAST_DUE:
        membership.past_due_since = membership.past_due_since or fetched_at
    else:
        membership.past_due_since = None

    email = None
    if new_status in (Membership.Status.ACTIVE, Membership.Status.TRIALING):
        membership.canceled_at = None
        membership.ended_sent_at = None
        if membership.welcome_sent_at is None:
            membership.welcome_sent_at = fetched_at
            email = "welcome"
    elif new_status in ENDED_STATUSES and previous_status not in ENDED_STATUSES:
        membership.canceled_at = (
            _timestamp(subscription.get("ended_at") or subscription.get("canceled_at"))
            or fetched_at
        )
        if membership.welcome_sent_at and membership.ended_sent_at is None:
            membership.ended_sent_at = fetched_at
            membership.welcome_sent_at = None  # coming back is welcomed again
            email = "ended"
    membership.save()
    if email:
        tasks.send_billing_email.delay_on_commit(membership.pk, email, {})
    return membership


# --- Personal data export -----------------------------------------------------------


def export_membership(*, subscriber: Subscriber) -> dict[str, Any] | None:
    """Return what Quire stores about the subscriber's paid membership."""
    membership = (
        Membership.objects.select_related("tier").filter(subscriber=subscriber).first()
    )
    if membership is None:
        return None

    def when(value):
        return value.isoformat() if value else None

    return {
        "tier": membership.tier.name if membership.tier else None,
        "status": membership.status or None,
        "amount": membership.amount,
        "currency": membership.currency or None,
        "interval": membership.interval or None,
        "current_period_end": when(membership.current_period_end),
        "cancel_at_period_end": membership.cancel_at_period_end,
        "canceled_at": when(membership.canceled_at),
        "complimentary": membership.complimentary,
        "complimentary_until": when(membership.complimentary_until),
        "stripe_customer_id": membership.stripe_customer_id or None,
        "stripe_subscription_id": membership.stripe_subscription_id or None,
        "created": when(membership.created),
    }


# --- Private feed --------------------------------------------------------------------


def ensure_feed_token(*, membership: Membership) -> str:
    """Return the member's private feed secret, making one on first use."""
    if not membership.feed_token:
        token = secrets.token_urlsafe(24)
        Membership.objects.filter(pk=membership.pk, feed_token__isnull=True).update(
            feed_token=token
        )
        membership.feed_token = Membership.objects.values_list(
            "feed_token", flat=True
        ).get(pk=membership.pk)
    return membership.feed_token


def reset_feed_token(*, membership: Membership) -> str:
    """Give the member a new private feed address; the old one stops working."""
    membership.feed_token = secrets.token_urlsafe(24)
    membership.save(update_fields=["feed_token", "updated"])
    return membership.feed_token


# --- Complimentary memberships -------------------------------------------------------


@transaction.atomic
def grant_complimentary_membership(
    *,
    subscribers,
    until: datetime | None = None,
    tier: Tier | None = None,
) -> int:
    """Give paid access without payment to each subscriber; return how many."""
    subscriber_pks = list(subscribers.values_list("pk", flat=True))
    existing = set(
        Membership.objects.filter(subscriber_id__in=subscriber_pks).values_list(
            "subscriber_id", flat=True
        )
    )
    Membership.objects.bulk_create(
        [
            Membership(subscriber_id=pk, complimentary=True)
            for pk in subscriber_pks
            if pk not in existing
        ]
    )
    changes: dict[str, Any] = {"complimentary": True, "complimentary_until": until}
    if tier is not None:
        changes["tier"] = tier
    Membership.objects.filter(subscriber_id__in=subscriber_pks).update(
        updated=timezone.now(), **changes
    )
    return len(subscriber_pks)


@transaction.atomic
def end_complimentary_membership(*, memberships) -> int:
    """Take back complimentary access from these memberships."""
    return memberships.filter(complimentary=True).update(
        complimentary=False, complimentary_until=None, updated=timezone.now()
    )
