"""A stranger's checkout with someone else's address attaches to nobody until the
owner of the address follows the link emailed to it.

The attacker pays anonymously at /pricing/ with a member's (or an active
subscriber's) address; the local Stripe completes the payment and sends signed
webhooks. The member's Stripe customer, membership, status and consent record stay
as they were; only the emailed confirmation link (GET shows a button, POST
confirms, once) attaches the new subscription.
"""

import re

import pytest
from django.test import Client

from subscribers.billing.models import Membership
from subscribers.models import Subscriber
from subscribers.sessions import SESSION_KEY
from tests.billing.conftest import deliver, paid_member, tier
from tests.billing.stripe_fake import fake_stripe, make_event, stripe_settings
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

# The billing tests' fixtures: the local Stripe, its settings, a tier, a signed
# POST of an event, a member who paid through Checkout.
__all__ = ["deliver", "fake_stripe", "paid_member", "stripe_settings", "tier"]

CLAIM_LINK = re.compile(r"https?://[^/\s]+(/billing/claim/[^/\s]+/)")


@pytest.fixture
def pay(
    fake_stripe, stripe_settings, deliver, tier, django_capture_on_commit_callbacks
):
    """Pay anonymously at /pricing/ with an address, in a browser of one's own."""

    def checkout(email: str, browser: Client) -> tuple[str, dict]:
        response = browser.post(
            "/pricing/subscribe/",
            {"tier": tier.pk, "interval": "month", "email": email},
            REMOTE_ADDR="203.0.113.66",
            HTTP_USER_AGENT="attacker-agent",
        )
        assert response.status_code == 303
        session_id = response["Location"].rsplit("/", 1)[-1]
        subscription = fake_stripe.complete_checkout(session_id)
        for event in (
            make_event("customer.subscription.created", subscription),
            make_event(
                "checkout.session.completed", fake_stripe.session_object(session_id)
            ),
            make_event("invoice.paid", {"id": "in_x", "subscription": subscription}),
        ):
            with django_capture_on_commit_callbacks(execute=True):
                assert deliver(event).status_code == 200
        return session_id, subscription

    return checkout


def _state(subscriber: Subscriber) -> tuple:
    subscriber = Subscriber.objects.get(pk=subscriber.pk)
    membership = Membership.objects.filter(subscriber=subscriber).first()
    return (
        subscriber.status,
        subscriber.consent_at,
        subscriber.consent_ip,
        subscriber.consent_user_agent,
        subscriber.consent_source,
        membership
        and (
            membership.status,
            membership.stripe_customer_id,
            membership.stripe_subscription_id,
            membership.tier_id,
        ),
    )


def _claim_link(smtp_settings, email: str) -> str:
    (message,) = [
        m for m in smtp_settings.messages if m.message["Subject"].startswith("Confirm")
    ]
    assert message.rcpt_tos == [email]
    body = message.message.get_body(("plain",)).get_content()
    return CLAIM_LINK.search(body).group(1)


def test_an_anonymous_checkout_with_a_members_address_leaves_the_member_alone(
    paid_member, pay, fake_stripe, smtp_settings
):
    member, their_subscription = paid_member(email="member@example.org")
    before = _state(member)
    attacker = Client()

    session_id, subscription = pay("member@example.org", attacker)

    (_, params) = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert "customer" not in params
    assert params["customer_email"] == "member@example.org"
    assert subscription["customer"] != their_subscription["customer"]
    assert _state(member) == before
    page = attacker.get(f"/billing/success/?session_id={session_id}")
    assert "emailed member@example.org a link" in page.content.decode()
    assert SESSION_KEY not in attacker.session
    assert _claim_link(smtp_settings, "member@example.org")


def test_an_anonymous_checkout_with_an_active_address_attaches_only_through_the_link(
    pay, smtp_settings, client, django_capture_on_commit_callbacks
):
    victim = SubscriberFactory(email="victim@example.org")
    before = _state(victim)
    _, subscription = pay("victim@example.org", Client())
    link = _claim_link(smtp_settings, "victim@example.org")

    assert _state(victim) == before
    assert not Membership.objects.filter(subscriber=victim).exists()
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert not any(s.startswith("Welcome to Supporter") for s in subjects)

    # Forged, tampered and scanned links change nothing.
    assert client.post("/billing/claim/forged/").status_code == 404
    assert client.post(link.replace("/claim/", "/claim/x")).status_code == 404
    shown = client.get(link)
    assert shown.status_code == 200
    assert "<button" in shown.content.decode()
    assert _state(victim) == before

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(
            link, REMOTE_ADDR="198.51.100.9", HTTP_USER_AGENT="victim-agent"
        )

    assert confirmed.status_code == 200
    assert "Your Supporter membership is active" in confirmed.content.decode()
    victim.refresh_from_db()
    membership = Membership.objects.get(subscriber=victim)
    assert membership.has_paid_access()
    assert membership.stripe_subscription_id == subscription["id"]
    assert membership.stripe_customer_id == subscription["customer"]
    assert victim.consent_source == "checkout"
    assert victim.consent_ip == "198.51.100.9"
    assert victim.consent_user_agent == "victim-agent"
    assert victim.consent_at > before[1]
    assert client.session[SESSION_KEY] == victim.pk
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert subjects.count("Welcome to Supporter: thank you for your support") == 1


def test_a_confirmation_link_attaches_once(pay, smtp_settings, client):
    victim = SubscriberFactory(email="victim@example.org")
    pay("victim@example.org", Client())
    link = _claim_link(smtp_settings, "victim@example.org")
    client.post(link, REMOTE_ADDR="198.51.100.9")
    after = _state(victim)

    again = Client().post(link, REMOTE_ADDR="203.0.113.66")

    assert "already confirmed" in again.content.decode()
    assert _state(victim) == after
    assert SESSION_KEY not in again.wsgi_request.session


def test_an_unsubscribed_members_address_stays_unsubscribed_until_the_link(
    paid_member, pay, smtp_settings, fake_stripe
):
    member, subscription = paid_member(email="left@example.org")
    Subscriber.objects.filter(pk=member.pk).update(status="unsubscribed")
    before = _state(member)

    pay("left@example.org", Client())

    assert _state(member) == before
    assert _claim_link(smtp_settings, "left@example.org")


def test_a_new_address_still_becomes_a_member_by_paying_with_its_consent(
    pay, smtp_settings
):
    browser = Client()

    _, subscription = pay("new@example.org", browser)

    subscriber = Subscriber.objects.get(email="new@example.org")
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.consent_source == "checkout:/pricing/"
    assert subscriber.consent_ip == "203.0.113.66"
    assert subscriber.consent_user_agent == "attacker-agent"
    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.stripe_subscription_id == subscription["id"]
    assert membership.has_paid_access()
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert not any(s.startswith("Confirm") for s in subjects)


def test_nobody_attaches_a_held_checkout_without_its_link(pay, smtp_settings):
    from django.contrib.auth import get_user_model

    from subscribers.tokens import make_confirmation_token

    victim = SubscriberFactory(email="victim@example.org")
    pay("victim@example.org", Client())
    attacker = SubscriberFactory(email="attacker@example.org", confirmation_nonce="n")
    before = _state(victim)
    outsider, subscriber, staff = Client(), Client(), Client()
    session = subscriber.session
    session[SESSION_KEY] = attacker.pk
    session.save()
    staff.force_login(get_user_model().objects.create_user("ed", is_staff=True))
    # Another signed link of Quire's, the owner's link cut short, plain guesses.
    link = _claim_link(smtp_settings, "victim@example.org")
    tokens = ["forged", make_confirmation_token(attacker), link.split("/")[-2][:-4]]

    for browser in (outsider, subscriber, staff):
        for token in tokens:
            response = browser.post(f"/billing/claim/{token}/")
            assert response.status_code == 404, token

    assert _state(victim) == before
    assert not Membership.objects.filter(subscriber=victim).exists()
