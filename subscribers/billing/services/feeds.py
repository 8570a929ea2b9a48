"""The member's private feed address: a secret made on first use, reset on demand."""

import secrets
from typing import cast

from ..models import Membership


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
    return cast(str, membership.feed_token)  # set above if it was not


def reset_feed_token(*, membership: Membership) -> str:
    """Give the member a new private feed address; the old one stops working."""
    membership.feed_token = secrets.token_urlsafe(24)
    membership.save(update_fields=["feed_token", "updated"])
    return membership.feed_token
