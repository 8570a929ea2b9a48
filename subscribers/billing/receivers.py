"""Billing's part when the subscribers app erases or exports a subscriber.

Connected in BillingConfig.ready() to the signals of subscribers/signals.py.
"""

import stripe

from subscribers.signals import ErasureRefused

from .services import cancel_subscription_for_erasure, export_membership


def cancel_paid_subscriptions(sender, *, subscribers, **kwargs) -> None:
    """Cancel at Stripe the subscriptions of those about to be erased.

    Raises ErasureRefused when Stripe cannot be reached, so that nothing is erased
    while Stripe would go on charging the person.
    """
    try:
        for subscriber in subscribers:
            cancel_subscription_for_erasure(subscriber=subscriber)
    except stripe.StripeError as exc:
        raise ErasureRefused(
            "We could not cancel your paid subscription with our payment provider, "
            "so nothing was deleted. Please try again in a few minutes, or cancel it "
            "under Manage billing first."
        ) from exc


def add_membership_to_export(sender, *, subscriber, **kwargs) -> dict:
    """Return the membership section of the subscriber's data export."""
    return {"membership": export_membership(subscriber=subscriber)}
