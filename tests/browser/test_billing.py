"""A reader becomes a paying supporter in Chromium: pricing, Stripe Checkout (the
local Stripe), signed webhooks, then the paid part of an issue."""

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from subscribers.billing.models import Membership
from tests.billing.stripe_fake import fake_stripe, make_event, sign, stripe_settings
from tests.factories.billing import TierFactory
from tests.factories.issues import IssueFactory

__all__ = ["fake_stripe", "stripe_settings"]

pytestmark = pytest.mark.django_db(transaction=True)

PAID = "PAIDMARKER-browser-9d1"


def deliver(live_server, event: dict) -> int:
    body = json.dumps(event)
    request = urllib.request.Request(
        live_server.url + "/stripe/webhook/",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_a_reader_subscribes_through_checkout_and_then_reads_the_paid_part(
    page, live_server, fake_stripe, stripe_settings
):
    TierFactory(
        name="Supporter",
        slug="supporter",
        benefits="Every paid-only issue\nThe paid part of each issue",
        in_stripe=True,
    )
    fake_stripe.add_price(price_id="price_year", amount=8000, interval="year")
    IssueFactory(
        published=True,
        slug="deep-dive",
        title="Deep dive",
        body=f"The free opening.\n\n<!-- paywall -->\n\nThe paid analysis {PAID}.",
    )

    page.goto("/issues/deep-dive/")
    expect(page.get_by_text("The free opening.")).to_be_visible()
    expect(page.get_by_text(PAID)).to_have_count(0)

    page.goto("/pricing/")
    page.get_by_role("link", name="Yearly").click()
    expect(page.get_by_text("$80")).to_be_visible()
    page.get_by_label("Your email").fill("reader@example.org")
    page.get_by_role("button", name="Subscribe to Supporter").click()

    # At (the local) Stripe's Checkout page.
    expect(page).to_have_title("Stripe Checkout (test)")
    assert page.url.startswith(fake_stripe.base_url + "/checkout/pay/")
    session_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#email")).to_have_text("reader@example.org")

    # The reader pays; Stripe sends its webhooks and returns the reader to Quire.
    subscription = fake_stripe.complete_checkout(session_id)
    session = fake_stripe.session_object(session_id)
    assert (
        deliver(live_server, make_event("checkout.session.completed", session)) == 200
    )
    assert (
        deliver(live_server, make_event("customer.subscription.created", subscription))
        == 200
    )
    page.goto(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id))

    expect(page.get_by_text("Your membership is active")).to_be_visible()
    expect(page.get_by_text("signed in as reader@example.org")).to_be_visible()
    membership = Membership.objects.get(subscriber__email="reader@example.org")
    assert membership.status == "active" and membership.interval == "year"

    page.goto("/issues/deep-dive/")
    expect(page.get_by_text(PAID)).to_be_visible()

    page.goto("/account/")
    expect(page.get_by_test_id("plan").first).to_contain_text("Supporter")
    expect(page.get_by_role("button", name="Manage billing")).to_be_visible()
