"""The member's private feed address: the secret in it, looked up and reset."""

from ..models import Membership, new_feed_token


def opens_private_feed(*, token: str) -> bool:
    """Return whether the token is a member's private feed secret, while the
    membership gives paid access."""
    return Membership.objects.with_paid_access().filter(feed_token=token).exists()


def reset_feed_token(*, membership: Membership) -> str:
    """Give the member a new private feed address; the old one stops working."""
    membership.feed_token = new_feed_token()
    membership.save(update_fields=["feed_token", "updated"])
    return membership.feed_token
