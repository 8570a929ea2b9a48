"""The one place Quire builds a Stripe client, from settings read at call time."""

import stripe
from django.conf import settings

REQUIRED_SETTINGS = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
)


def missing_settings() -> list[str]:
    """Return the names of the Stripe settings that are not set."""
    return [name for name in REQUIRED_SETTINGS if not getattr(settings, name, "")]


def is_configured() -> bool:
    """Return whether paid subscriptions can be sold."""
    return not missing_settings()


def client() -> stripe.StripeClient:
    """Return a Stripe client for the configured account (and API address)."""
    base = getattr(settings, "STRIPE_API_BASE", "")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base} if base else None,
        max_network_retries=2,
    )
