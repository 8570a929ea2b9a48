import json

import pytest

from subscribers.billing.models import Tier
from tests.billing.stripe_fake import fake_stripe, make_event, sign, stripe_settings
from tests.factories.billing import TierFactory

__all__ = ["fake_stripe", "stripe_settings"]


@pytest.fixture
def tier(db) -> Tier:
    return TierFactory(
        name="Supporter",
        slug="supporter",
        description="Keep the newsletter independent.",
        benefits="Every paid-only issue\nThe paid half of each issue\nA private feed",
        in_stripe=True,
    )


@pytest.fixture
def deliver(client):
    """POST a Stripe event to the webhook, signed as Stripe signs it."""

    def post(event: dict, *, timestamp=None, header=None):
        body = json.dumps(event)
        return client.post(
            "/stripe/webhook/",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": header or sign(body, timestamp=timestamp)},
        )

    return post


@pytest.fixture
def paid_member(
    db, fake_stripe, stripe_settings, tier, deliver, django_capture_on_commit_callbacks
):
    """A subscriber who paid through Checkout: returns (subscriber, subscription)."""
    from subscribers.billing import services
    from tests.factories.subscribers import SubscriberFactory

    def make(email="member@example.org", status="active"):
        subscriber = SubscriberFactory(email=email)
        session = services.create_checkout_session(
            tier=tier,
            interval="month",
            subscriber=subscriber,
            signed_in=True,
            success_url="http://testserver/billing/success/",
            cancel_url="http://testserver/billing/cancel/",
        )
        subscription = fake_stripe.complete_checkout(session["id"], status=status)
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(
                make_event(
                    "checkout.session.completed",
                    fake_stripe.session_object(session["id"]),
                )
            )
        assert response.status_code == 200
        return subscriber, subscription

    return make
