"""Checkout and portal sessions, and ending a subscription before an erasure."""

from typing import Any, cast

from django.db import transaction

from subscribers import services as subscriber_services
from subscribers.addresses import normalise_email
from subscribers.models import Subscriber

from .. import stripe_api
from ..models import Membership, Tier
from .subscriptions import is_established


@transaction.atomic
def subscriber_for_checkout(
    *, email: str, ip: str | None, user_agent: str, source: str
) -> tuple[Subscriber, bool]:
    """Return who an anonymous checkout with this address is for, and if it is new.

    An address that belongs to an active subscriber or a member is returned
    untouched: whoever typed it has not proven it is theirs, so nothing about that
    subscriber changes unless its owner confirms by the emailed link. Any other
    address goes through the subscriber rules (refused when suppressed; pending,
    with a consent record, when new or unsubscribed).
    """
    email = normalise_email(email)
    existing = Subscriber.objects.filter(email=email).first()
    if (
        existing is not None
        and is_established(subscriber=existing)
        and not subscriber_services.is_suppressed(email)
    ):
        return existing, False
    return subscriber_services.subscriber_for_payment(
        email=email, ip=ip, user_agent=user_agent, source=source
    )


def create_checkout_session(
    *,
    tier: Tier,
    interval: str,
    subscriber: Subscriber,
    signed_in: bool,
    success_url: str,
    cancel_url: str,
    amount: int | None = None,
) -> dict[str, Any]:
    """Create a Stripe Checkout Session for the tier and return it (id and url).

    signed_in says the payer is this subscriber, signed in; only then is their
    Stripe customer reused. Anyone else pays as a new customer with the address,
    and the completed checkout waits for the address to confirm it when it belongs
    to someone already (see claims).
    """
    if interval not in tier.intervals:
        raise ValueError(f"{tier} has no {interval}ly price.")
    membership = (
        Membership.objects.filter(subscriber=subscriber).first() if signed_in else None
    )
    metadata = {
        "subscriber_id": str(subscriber.pk),
        "tier_id": str(tier.pk),
        "interval": interval,
        # Read back from the signed webhook: whether the payer proved the address.
        "signed_in": "1" if signed_in else "0",
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
    # Built as a plain dict; not checked against stripe's TypedDict.
    session = stripe_api.client().v1.checkout.sessions.create(params=cast(Any, params))
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
