import json
import threading
import urllib.request

import pytest

from subscribers.billing import services
from subscribers.billing.models import Membership, StripeEvent
from tests.billing.stripe_fake import make_event, sign
from tests.conftest import wait_for
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _post(url: str, body: bytes, header: str) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_the_same_event_five_times_at_once_applies_once_and_sends_one_email(
    live_server, fake_stripe, stripe_settings, tier, smtp_settings
):
    subscriber = SubscriberFactory(email="five@example.org")
    session = services.create_checkout_session(
        tier=tier, interval="year", subscriber=subscriber, signed_in=True,
        success_url=live_server.url + "/billing/success/",
        cancel_url=live_server.url + "/billing/cancel/",
    )  # fmt: skip
    fake_stripe.complete_checkout(session["id"])
    event = make_event(
        "checkout.session.completed", fake_stripe.session_object(session["id"])
    )
    body = json.dumps(event)
    header = sign(body)
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def deliver():
        barrier.wait()
        statuses.append(
            _post(live_server.url + "/stripe/webhook/", body.encode(), header)
        )

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert statuses == [200] * 5
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    wait_for(
        lambda: StripeEvent.objects.filter(status="processed").exists(),
        message="the event to be processed",
    )
    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "active"
    wait_for(lambda: smtp_settings.messages, message="the welcome email")
    retrievals = fake_stripe.calls("GET", "/v1/subscriptions/")
    assert len(retrievals) == 1
    assert [m.message["Subject"] for m in smtp_settings.messages] == [
        "Welcome to Supporter: thank you for your support"
    ]
