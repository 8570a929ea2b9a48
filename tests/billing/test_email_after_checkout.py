"""A paying reader who gets no email is asked on the success page whether to."""

import re

import pytest

from newsletter.models import Newsletter
from subscribers.models import Subscriber, Subscription
from subscribers.services import suppress_address
from subscribers.sessions import SESSION_KEY
from tests.billing.stripe_fake import make_event
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

OFFER = "Also receive the newsletter by email?"


def sign_in(client, subscriber):
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()


@pytest.fixture
def lists(db):
    monthly = Newsletter.default()
    news = Newsletter.objects.create(
        name="Announcements", slug="news", join_by_default=False, position=2
    )
    return monthly, news


@pytest.fixture
def pay(client, fake_stripe, stripe_settings, tier, deliver, commit):
    """The signed-in subscriber pays through Checkout; returns the session id."""

    def run(subscriber, browser=client):
        sign_in(browser, subscriber)
        response = browser.post(
            "/pricing/subscribe/", {"tier": tier.pk, "interval": "month"}
        )
        assert response.status_code == 303
        session_id = response["Location"].rsplit("/", 1)[-1]
        fake_stripe.complete_checkout(session_id)
        with commit():
            assert (
                deliver(
                    make_event(
                        "checkout.session.completed",
                        fake_stripe.session_object(session_id),
                    )
                ).status_code
                == 200
            )
        return session_id

    return run


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def newsletters_of(subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber).values_list(
            "newsletter__slug", flat=True
        )
    )


def test_an_unsubscribed_reader_who_pays_is_asked_and_subscribed_again(
    client, lists, pay
):
    monthly, news = lists
    left = SubscriberFactory(email="left@example.org", status="unsubscribed")
    left.newsletters.clear()
    session_id = pay(left)

    page = client.get(f"/billing/success/?session_id={session_id}").content.decode()
    assert "Your membership is active" in page
    assert OFFER in page
    assert re.search(rf'value="{monthly.pk}"[^>]*checked', page)
    assert 'action="/billing/success/email/"' in page

    done = client.post(
        "/billing/success/email/",
        {"session_id": session_id, "newsletters": [monthly.pk, news.pk]},
        headers={"user-agent": "Browser/1.0"},
        follow=True,
    )

    left.refresh_from_db()
    assert left.status == "active" and left.unsubscribed_at is None
    assert left.consent_source == "checkout"
    assert left.consent_user_agent == "Browser/1.0"
    assert newsletters_of(left) == {monthly.slug, "news"}
    assert Subscriber.objects.receiving(newsletter=news.pk).get() == left
    assert "will come to left@example.org by email" in done.content.decode()
    assert OFFER not in done.content.decode()  # asked once: they are in now


def test_an_active_reader_in_no_newsletter_is_asked_too(client, lists, pay):
    monthly, news = lists
    nowhere = SubscriberFactory(email="nowhere@example.org")
    nowhere.newsletters.clear()
    session_id = pay(nowhere)

    assert (
        OFFER
        in client.get(f"/billing/success/?session_id={session_id}").content.decode()
    )
    client.post(
        "/billing/success/email/", {"session_id": session_id, "newsletters": [news.pk]}
    )

    assert newsletters_of(nowhere) == {"news"}


def test_a_reader_who_gets_the_emails_is_not_asked(client, lists, pay):
    reader = SubscriberFactory(email="reader@example.org")
    session_id = pay(reader)

    page = client.get(f"/billing/success/?session_id={session_id}").content.decode()

    assert "Your membership is active" in page and OFFER not in page


def test_a_suppressed_address_is_told_to_write_to_the_author(client, lists, pay):
    bounced = SubscriberFactory(email="bounced@example.org")
    session_id = pay(bounced)
    suppress_address(email=bounced.email, reason="bounced")

    page = client.get(f"/billing/success/?session_id={session_id}").content.decode()
    forced = client.post(
        "/billing/success/email/",
        {"session_id": session_id, "newsletters": [lists[0].pk]},
        follow=True,
    )

    assert OFFER not in page and "We cannot send the newsletter" in page
    assert "write to" in forced.content.decode()
    bounced.refresh_from_db()
    assert bounced.status == "bounced"
    assert not Subscriber.objects.receiving().exists()


def test_nobody_else_can_subscribe_the_payer_or_themselves_with_their_checkout(
    client, django_user_model, lists, pay
):
    from django.test import Client

    payer = SubscriberFactory(email="payer@example.org", status="unsubscribed")
    session_id = pay(payer)
    other = SubscriberFactory(email="other@example.org", status="unsubscribed")
    stranger, outsider = Client(), Client()
    sign_in(stranger, other)
    data = {"session_id": session_id, "newsletters": [lists[1].pk]}
    before = list(Subscription.objects.values_list("subscriber", "newsletter"))

    # Someone else signed in, with the payer's checkout id.
    assert stranger.post("/billing/success/email/", data).status_code == 403
    assert (
        OFFER
        not in stranger.get(
            f"/billing/success/?session_id={session_id}"
        ).content.decode()
    )
    # Nobody signed in.
    assert outsider.post("/billing/success/email/", data).status_code == 403
    # The payer with a checkout id that is no checkout, or none at all.
    assert (
        client.post(
            "/billing/success/email/", {**data, "session_id": "cs_test_forged"}
        ).status_code
        == 403
    )
    assert (
        client.post("/billing/success/email/", {"newsletters": [1]}).status_code == 403
    )
    payer.refresh_from_db()
    other.refresh_from_db()
    assert payer.status == other.status == "unsubscribed"
    assert list(Subscription.objects.values_list("subscriber", "newsletter")) == before


def test_the_choice_needs_a_csrf_token(client, lists, pay):
    from django.test import Client

    left = SubscriberFactory(email="left@example.org", status="unsubscribed")
    session_id = pay(left)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies

    response = strict.post(
        "/billing/success/email/",
        {"session_id": session_id, "newsletters": [lists[0].pk]},
    )

    assert response.status_code == 403
    left.refresh_from_db()
    assert left.status == "unsubscribed"


def test_choosing_no_newsletter_is_asked_again(client, lists, pay):
    left = SubscriberFactory(email="left@example.org", status="unsubscribed")
    session_id = pay(left)

    response = client.post("/billing/success/email/", {"session_id": session_id})

    assert response.status_code == 400
    assert "Choose at least one newsletter" in response.content.decode()
    left.refresh_from_db()
    assert left.status == "unsubscribed"
