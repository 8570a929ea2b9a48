"""Checkouts held until the address's owner confirms them by an emailed link.

Anyone can type any address at /pricing/. When a checkout started without signing
in completes for an address that is already an active subscriber's or a member's,
the subscription attaches to nobody: it is held as a CheckoutClaim and the address
gets a link (signed, 7 days, single use). Following it attaches the membership and
records the owner's consent, as the subscribe confirmation would.
"""

import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from subscribers import services as subscriber_services
from subscribers.models import Subscriber

from .. import tasks
from ..models import CheckoutClaim, Tier
from .subscriptions import sync_subscription

# The consent record's source for a membership confirmed by its emailed link.
CLAIM_CONSENT_SOURCE = "checkout"


@transaction.atomic
def hold_checkout(
    *,
    subscriber: Subscriber,
    session_id: str,
    subscription_id: str,
    customer_id: str,
    tier_id: int | None,
) -> CheckoutClaim:
    """Hold a paid checkout for the address to confirm, and email it the link once."""
    claim, created = CheckoutClaim.objects.get_or_create(
        stripe_session_id=session_id,
        defaults={
            "subscriber": subscriber,
            "tier": Tier.objects.filter(pk=tier_id).first() if tier_id else None,
            "stripe_subscription_id": subscription_id,
            "stripe_customer_id": customer_id,
            "nonce": secrets.token_hex(16),
        },
    )
    if created:
        # The app's tasks are DjangoTasks; the stubs type shared_task as Task.
        tasks.send_checkout_claim_email.delay_on_commit(claim.pk)  # type: ignore[attr-defined]
    return claim


@transaction.atomic
def claim_checkout(
    *,
    claim: CheckoutClaim,
    ip: str | None,
    user_agent: str,
    now: datetime | None = None,
) -> CheckoutClaim | None:
    """Attach a held checkout to its address's subscriber, once; None if it cannot.

    None when the link was used meanwhile or the address is now suppressed. The
    subscription is read from Stripe (a Stripe error propagates and nothing is
    used up), so the membership matches Stripe's current state.
    """
    now = now or timezone.now()
    claim = (
        CheckoutClaim.objects.select_for_update()
        .filter(pk=claim.pk, claimed_at__isnull=True)
        .exclude(nonce="")
        .first()
    )
    if claim is None:
        return None
    subscriber = claim.subscriber
    if subscriber_services.is_suppressed(subscriber.email):
        return None
    claim.claimed_at = now
    claim.nonce = ""
    claim.save(update_fields=["claimed_at", "nonce"])
    subscriber_services.record_consent(
        subscriber=subscriber,
        ip=ip,
        user_agent=user_agent,
        source=CLAIM_CONSENT_SOURCE,
        now=now,
    )
    # Following the link proves the address, as the subscribe confirmation does.
    subscriber_services.confirm_subscription(subscriber=subscriber, now=now)
    sync_subscription(
        subscription_id=claim.stripe_subscription_id,
        subscriber=subscriber,
        customer_id=claim.stripe_customer_id,
    )
    return claim
