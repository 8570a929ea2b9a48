"""Complimentary memberships and the membership part of a personal data export."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from subscribers.models import Subscriber

from ..models import Membership, Tier

# --- Personal data export -----------------------------------------------------------


def export_membership(*, subscriber: Subscriber) -> dict[str, Any] | None:
    """Return what Quire stores about the subscriber's paid membership."""
    membership = Membership.objects.of(subscriber)
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
