"""Make a membership match the subscription Stripe holds for it."""

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from subscribers.models import Subscriber

from .. import stripe_api, tasks
from ..models import Membership, Tier
from ..stripe_fields import as_int, object_id, timestamp

logger = logging.getLogger(__name__)


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


def is_established(*, subscriber: Subscriber) -> bool:
    """Return whether a stranger's checkout must not attach to this subscriber:
    they are active, or have (or had) a membership."""
    return (
        subscriber.status == Subscriber.Status.ACTIVE
        or Membership.objects.filter(subscriber=subscriber).exists()
    )


def needs_proof(
    *, subscriber: Subscriber, subscription_id: str, metadata: dict[str, Any]
) -> bool:
    """Return whether a checkout's subscription must wait for the address's owner.

    metadata is the Checkout Session's (or its subscription's), written by
    create_checkout_session and read back from a signed webhook.
    """
    if metadata.get("signed_in") == "1":
        return False
    membership = Membership.objects.filter(subscriber=subscriber).first()
    if membership is not None and membership.stripe_subscription_id == subscription_id:
        return False  # attached already, as a new reader's own checkout is
    return is_established(subscriber=subscriber)


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
        subscriber_id = as_int(metadata.get("subscriber_id"))
        if subscriber_id is not None:
            subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
        if subscriber is not None and needs_proof(
            subscriber=subscriber, subscription_id=subscription_id, metadata=metadata
        ):
            # A stranger paid with this address: attached only once its owner
            # confirms by the emailed link (see claims).
            return None
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
    tier_id = as_int((subscription.get("metadata") or {}).get("tier_id"))
    if tier is None and tier_id:
        tier = Tier.objects.filter(pk=tier_id).first()
    product = object_id(price.get("product"))
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
        object_id(subscription.get("customer")) or membership.stripe_customer_id
    )
    membership.status = new_status
    membership.tier = _tier_for(subscription, price) or membership.tier
    membership.stripe_price_id = price.get("id") or ""
    membership.amount = price.get("unit_amount")
    membership.currency = price.get("currency") or ""
    membership.interval = recurring.get("interval") or ""
    membership.current_period_end = timestamp(
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
            timestamp(subscription.get("ended_at") or subscription.get("canceled_at"))
            or fetched_at
        )
        if membership.welcome_sent_at and membership.ended_sent_at is None:
            membership.ended_sent_at = fetched_at
            membership.welcome_sent_at = None  # coming back is welcomed again
            email = "ended"
    membership.save()
    if email:
        # The app's tasks are DjangoTasks; the stubs type shared_task as Task.
        tasks.send_billing_email.delay_on_commit(membership.pk, email, {})  # type: ignore[attr-defined]
    return membership
