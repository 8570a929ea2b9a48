"""Every write of paid tiers: checkout, portal, Stripe events, complimentary grants.

- ``checkout``: Checkout and portal sessions, ending a subscription before erasure.
- ``claims``: checkouts held until the address's owner confirms them by email.
- ``stripe_events``: Stripe events, stored once and applied at most once, each by
  the handler its type names in one table.
- ``subscriptions``: a membership made to match Stripe's current subscription.
- ``memberships``: complimentary grants and the personal data export.
- ``feed_tokens``: the secret in a member's private feed address.

Callers use the names re-exported here (``from subscribers.billing import services``).
Subscribers themselves are written only through ``subscribers.services`` (the
address rules, the suppression list and the consent record live there).
"""

from .checkout import (
    cancel_subscription_for_erasure,
    create_checkout_session,
    create_portal_session,
    subscriber_for_checkout,
)
from .claims import claim_checkout
from .feed_tokens import opens_private_feed, reset_feed_token
from .memberships import (
    end_complimentary_membership,
    export_membership,
    grant_complimentary_membership,
)
from .stripe_events import (
    mark_stripe_event_failed,
    process_stripe_event,
    record_stripe_event,
    record_stripe_event_failure,
    requeue_stripe_events,
    requeue_stuck_stripe_events,
)

__all__ = [
    "cancel_subscription_for_erasure",
    "claim_checkout",
    "create_checkout_session",
    "create_portal_session",
    "end_complimentary_membership",
    "export_membership",
    "grant_complimentary_membership",
    "mark_stripe_event_failed",
    "opens_private_feed",
    "process_stripe_event",
    "record_stripe_event",
    "record_stripe_event_failure",
    "requeue_stripe_events",
    "requeue_stuck_stripe_events",
    "reset_feed_token",
    "subscriber_for_checkout",
]
