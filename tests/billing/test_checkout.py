import html
import re

import pytest
from django.contrib.auth import get_user_model

from newsletter.models import Publication
from subscribers.billing.models import Membership, StripeEvent
from subscribers.billing.views import CHECKOUT_SESSION_KEY
from subscribers.models import Subscriber, Suppression, hash_email
from subscribers.services import suppress_address
from subscribers.sessions import SESSION_KEY
from tests.billing.stripe_fake import make_event
from tests.factories.billing import TierFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


def sign_in(client, subscriber):
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()


def test_pricing_without_stripe_keys_says_paid_subscriptions_are_not_set_up(
    client, settings, tier
):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_PUBLISHABLE_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""

    page = client.get("/pricing/").content.decode()

    assert "Paid subscriptions are not set up yet" in page
    assert "STRIPE_SECRET_KEY" not in page  # the how-to is for staff only
    assert (
        client.post(
            "/pricing/subscribe/",
            {"tier": tier.pk, "interval": "month", "email": "a@b.org"},
        ).status_code
        == 302
    )
    assert not Subscriber.objects.exists()


def test_staff_are_told_how_to_set_stripe_up(client, settings):
    settings.STRIPE_SECRET_KEY = ""
    staff = get_user_model().objects.create_user("ed", is_staff=True)
    client.force_login(staff)

    page = client.get("/pricing/").content.decode()

    assert "STRIPE_SECRET_KEY" in page and "sync_stripe_tiers" in page


def test_pricing_shows_tiers_benefits_and_a_monthly_yearly_switch(
    client, stripe_settings, tier
):
    monthly = client.get("/pricing/").content.decode()
    yearly = client.get("/pricing/?interval=year").content.decode()

    assert "Supporter" in monthly and "A private feed" in monthly
    assert "$8" in monthly and "/month" in monthly
    assert "$80" in yearly and "/year" in yearly
    assert 'name="interval" value="year"' in yearly
    assert 'name="interval" value="month"' in monthly


def test_subscribing_creates_a_checkout_session_and_redirects_to_stripe(
    client, fake_stripe, stripe_settings, tier
):
    tier.trial_days = 14
    tier.save()

    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "year", "email": "New@Example.org"},
    )

    assert response.status_code == 303
    assert response["Location"].startswith(fake_stripe.base_url + "/checkout/pay/")
    subscriber = Subscriber.objects.get(email="new@example.org")
    assert subscriber.status == Subscriber.Status.PENDING
    # Counted as a signup from paid checkout on the growth page.
    assert subscriber.source == Subscriber.Source.CHECKOUT
    (params,) = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert params["mode"] == "subscription"
    assert params["client_reference_id"] == str(subscriber.pk)
    assert params["customer_email"] == "new@example.org"
    assert params["allow_promotion_codes"] == "true"
    assert params["line_items"] == [{"price": "price_year", "quantity": "1"}]
    assert params["subscription_data"]["trial_period_days"] == "14"
    assert params["subscription_data"]["metadata"]["subscriber_id"] == str(
        subscriber.pk
    )
    assert params["success_url"].endswith(
        "/billing/success/?session_id={CHECKOUT_SESSION_ID}"
    )


def test_a_signed_in_reader_has_their_email_prefilled(
    client, fake_stripe, stripe_settings, tier
):
    subscriber = SubscriberFactory(email="known@example.org")
    sign_in(client, subscriber)

    page = client.get("/pricing/").content.decode()
    response = client.post(
        "/pricing/subscribe/", {"tier": tier.pk, "interval": "month"}
    )

    assert "As known@example.org" in page
    assert response.status_code == 303
    (params,) = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert params["customer_email"] == "known@example.org"
    assert params["client_reference_id"] == str(subscriber.pk)


def test_a_reader_who_is_not_signed_in_must_give_an_email(
    client, fake_stripe, stripe_settings, tier
):
    response = client.post(
        "/pricing/subscribe/", {"tier": tier.pk, "interval": "month"}
    )

    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert fake_stripe.calls("POST", "/v1/checkout/sessions") == []


def test_a_founding_member_chooses_a_higher_yearly_price(
    client, fake_stripe, stripe_settings
):
    founding = TierFactory(
        name="Founding member", slug="founding", monthly_amount=None,
        yearly_amount=15000, is_founding=True, stripe_product_id="prod_f",
    )  # fmt: skip

    too_low = client.post(
        "/pricing/subscribe/",
        {"tier": founding.pk, "interval": "year", "email": "f@example.org",
         "amount": "100"},
    )  # fmt: skip
    chosen = client.post(
        "/pricing/subscribe/",
        {"tier": founding.pk, "interval": "year", "email": "f@example.org",
         "amount": "250.50"},
    )  # fmt: skip

    assert too_low.status_code == 400
    assert "at least $150 a year" in too_low.content.decode()
    assert chosen.status_code == 303
    (params,) = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert params["line_items"][0]["price_data"] == {
        "currency": "usd",
        "product": "prod_f",
        "unit_amount": "25050",
        "recurring": {"interval": "year"},
    }


def test_stripe_failing_at_checkout_shows_an_error_and_charges_nothing(
    client, fake_stripe, stripe_settings, tier
):
    fake_stripe.down = True

    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "x@example.org"},
        follow=True,
    )

    assert "could not start the payment" in response.content.decode()


def test_success_page_shows_processing_until_the_webhook_then_signs_the_new_reader_in(
    client,
    fake_stripe,
    stripe_settings,
    tier,
    deliver,
    django_capture_on_commit_callbacks,
):
    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "paid@example.org"},
    )
    session_id = response["Location"].rsplit("/", 1)[-1]
    fake_stripe.complete_checkout(session_id)

    waiting = client.get(f"/billing/success/?session_id={session_id}")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            make_event(
                "checkout.session.completed", fake_stripe.session_object(session_id)
            )
        )
    done = client.get(f"/billing/success/?session_id={session_id}")

    assert "Processing your payment" in waiting.content.decode()
    assert 'http-equiv="refresh"' in waiting.content.decode()
    assert "Processing" not in done.content.decode()
    assert "signed in as paid@example.org" in done.content.decode()
    assert (
        client.session[SESSION_KEY]
        == Subscriber.objects.get(email="paid@example.org").pk
    )
    assert StripeEvent.objects.get().status == "processed"


def test_paying_for_someone_elses_existing_address_does_not_sign_in_as_them(
    client,
    fake_stripe,
    stripe_settings,
    tier,
    deliver,
    django_capture_on_commit_callbacks,
):
    SubscriberFactory(email="victim@example.org")
    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "victim@example.org"},
    )
    session_id = response["Location"].rsplit("/", 1)[-1]
    fake_stripe.complete_checkout(session_id)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            make_event(
                "checkout.session.completed", fake_stripe.session_object(session_id)
            )
        )

    done = client.get(f"/billing/success/?session_id={session_id}")

    # The address is someone's already: the membership waits for its owner.
    assert "emailed victim@example.org a link to confirm" in done.content.decode()
    assert "Your membership is active" not in done.content.decode()
    assert SESSION_KEY not in client.session


def test_cancel_page_leads_back_to_pricing(client):
    page = client.get("/billing/cancel/").content.decode()

    assert "nothing was charged" in page and 'href="/pricing/"' in page


def test_manage_billing_opens_a_customer_portal_session(
    client, fake_stripe, stripe_settings, paid_member
):
    subscriber, subscription = paid_member()
    sign_in(client, subscriber)

    response = client.post("/billing/portal/")

    assert response.status_code == 303
    assert response["Location"].startswith(fake_stripe.base_url + "/portal/")
    (params,) = fake_stripe.calls("POST", "/v1/billing_portal/sessions")
    assert params["customer"] == subscription["customer"]
    assert params["return_url"].endswith("/account/")


def test_manage_billing_without_a_subscription_goes_to_pricing(client, stripe_settings):
    sign_in(client, SubscriberFactory())

    response = client.post("/billing/portal/")

    assert response.status_code == 302 and response["Location"] == "/pricing/"
    assert not Membership.objects.exists()


def _pay(client, fake_stripe, deliver, commit, email, **post):
    """Post the pricing form for email, pay at Stripe and deliver the webhook."""
    response = client.post(
        "/pricing/subscribe/", {"interval": "month", "email": email, **post}
    )
    assert response.status_code == 303
    session_id = response["Location"].rsplit("/", 1)[-1]
    fake_stripe.complete_checkout(session_id)
    with commit(execute=True):
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


def test_a_suppressed_address_is_refused_at_checkout_and_nothing_is_made(
    client, fake_stripe, stripe_settings, tier
):
    publication = Publication.load()
    publication.sender_email = "editor@gradient.example"
    publication.save()
    Suppression.objects.create(
        email_hash=hash_email("gone@example.org"), reason="deleted"
    )
    bounced = SubscriberFactory(email="bounced@example.org")
    suppress_address(email="bounced@example.org", reason="bounced")

    for email in (" Gone@Example.ORG ", "bounced@example.org"):
        response = client.post(
            "/pricing/subscribe/",
            {"tier": tier.pk, "interval": "month", "email": email},
        )

        assert response.status_code == 400
        page = response.content.decode()
        assert "This address cannot subscribe here; contact" in page
        assert "editor@gradient.example" in page
    assert list(Subscriber.objects.values_list("pk", "status")) == [
        (bounced.pk, "bounced")
    ]
    assert fake_stripe.requests == []
    assert CHECKOUT_SESSION_KEY not in client.session


def test_checkout_keeps_a_consent_record_for_a_new_reader(
    client, fake_stripe, stripe_settings, tier
):
    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "  New@Example.ORG "},
        HTTP_USER_AGENT="Mozilla/5.0 test",
        REMOTE_ADDR="198.51.100.7",
    )

    assert response.status_code == 303
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "new@example.org"
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.consent_source == "checkout:/pricing/"
    assert subscriber.consent_ip == "198.51.100.7"
    assert subscriber.consent_user_agent == "Mozilla/5.0 test"
    assert subscriber.consent_at is not None
    assert subscriber.consent_text_version == str(
        Publication.load().consent_text_version
    )
    assert not Subscriber.objects.receiving().exists()


def test_an_address_the_form_refuses_is_refused_at_checkout_too(
    client, fake_stripe, stripe_settings, tier
):
    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "ada@example..org"},
    )

    assert response.status_code == 400
    assert not Subscriber.objects.exists()
    assert fake_stripe.requests == []


def test_a_new_reader_who_pays_is_confirmed_and_welcomed_by_email(
    client, fake_stripe, stripe_settings, tier, deliver, smtp_settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    _pay(client, fake_stripe, deliver, django_capture_on_commit_callbacks,
         "paid@example.org", tier=tier.pk)  # fmt: skip

    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.confirmed_at is not None
    assert list(Subscriber.objects.receiving()) == [subscriber]
    received = {m.message["Subject"]: m.rcpt_tos for m in smtp_settings.messages}
    assert received == {
        "Welcome to Quire": ["paid@example.org"],
        "Welcome to Supporter: thank you for your support": ["paid@example.org"],
    }


def test_paying_after_signing_up_voids_the_pending_confirmation_link(
    client, fake_stripe, stripe_settings, tier, deliver, mailoutbox,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/subscribe/", {"email": "ada@example.org", "page": "/"})
    (confirmation,) = mailoutbox
    link = re.search(r"https?://[^/\s]+(/subscribe/confirm/\S+/)", confirmation.body)

    _pay(client, fake_stripe, deliver, django_capture_on_commit_callbacks,
         "ada@example.org", tier=tier.pk)  # fmt: skip

    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.confirmation_nonce == ""
    assert [m.subject for m in mailoutbox].count("Welcome to Quire") == 1
    again = client.post(link.group(1))
    assert "You're already confirmed" in again.content.decode()
    assert [m.subject for m in mailoutbox].count("Welcome to Quire") == 1


@pytest.mark.parametrize("reason", ["bounced", "complained", "deleted"])
def test_a_checkout_completed_after_the_address_was_suppressed_does_not_activate_it(
    client, fake_stripe, stripe_settings, tier, deliver, smtp_settings, reason,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "ada@example.org"},
    )
    session_id = response["Location"].rsplit("/", 1)[-1]
    suppress_address(email="ada@example.org", reason=reason)
    fake_stripe.complete_checkout(session_id)

    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            make_event(
                "checkout.session.completed", fake_stripe.session_object(session_id)
            )
        )

    assert not Subscriber.objects.receiving().exists()
    assert not Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).exists()
    if reason == "deleted":
        assert not Subscriber.objects.exists()
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert "Welcome to Quire" not in subjects


def test_a_checkout_completed_for_an_address_on_the_suppression_list_keeps_it_pending(
    client, fake_stripe, stripe_settings, tier, deliver, smtp_settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "ada@example.org"},
    )
    session_id = response["Location"].rsplit("/", 1)[-1]
    # On the list by its hash only (as a suppression list carries it), the
    # subscriber row itself untouched.
    Suppression.objects.create(
        email_hash=hash_email("ada@example.org"), reason="complained"
    )
    fake_stripe.complete_checkout(session_id)

    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            make_event(
                "checkout.session.completed", fake_stripe.session_object(session_id)
            )
        )

    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert not Subscriber.objects.receiving().exists()
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert "Welcome to Quire" not in subjects


REFRESH_RE = re.compile(r'<meta http-equiv="refresh" content="(\d+); url=([^"]+)">')


def _start_checkout(client, fake_stripe, tier) -> str:
    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "slow@example.org"},
    )
    session_id = response["Location"].rsplit("/", 1)[-1]
    fake_stripe.complete_checkout(session_id)
    return session_id


def _follow_refreshes(client, url: str) -> tuple[list[int], str]:
    """Load the page as a browser does, following its refreshes; give up at 100."""
    delays = []
    for _ in range(100):
        page = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\ssrc=)", page), "no inline script"
        refresh = REFRESH_RE.search(page)
        if refresh is None:
            return delays, page
        delays.append(int(refresh.group(1)))
        url = html.unescape(refresh.group(2))
    raise AssertionError("the page never stops refreshing")


def test_the_success_page_stops_refreshing_after_a_minute_and_says_what_to_do(
    client, fake_stripe, stripe_settings, tier
):
    Publication.objects.update_or_create(
        pk=1, defaults={"sender_email": "editor@gradient.example"}
    )
    session_id = _start_checkout(client, fake_stripe, tier)

    delays, page = _follow_refreshes(
        client, f"/billing/success/?session_id={session_id}"
    )

    assert 60 <= sum(delays) <= 62
    assert "Stripe has not confirmed your payment yet" in page
    assert "inbox" in page
    assert 'href="/account/login/">Sign in</a> with your email address' in page
    assert 'href="mailto:editor@gradient.example"' in page
    assert f'href="/billing/success/?session_id={session_id}">Check again' in page


def test_the_success_page_shows_the_membership_when_the_webhook_comes_late(
    client, fake_stripe, stripe_settings, tier, deliver,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    session_id = _start_checkout(client, fake_stripe, tier)
    _follow_refreshes(client, f"/billing/success/?session_id={session_id}")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            make_event(
                "checkout.session.completed", fake_stripe.session_object(session_id)
            )
        )

    delays, page = _follow_refreshes(
        client, f"/billing/success/?session_id={session_id}"
    )

    assert delays == []
    assert "Your membership is active" in page


@pytest.mark.parametrize(
    ("came_from", "recorded"),
    [
        ("/issues/convnets/", "checkout:/issues/convnets/"),
        # Anything but an issue's page is no issue's to count.
        ("https://evil.example/issues/x/", "checkout:/pricing/"),
        ("/issues/../admin/", "checkout:/pricing/"),
        ("/issues/x/\r\nX-Evil: 1/", "checkout:/pricing/"),
    ],
)
def test_a_checkout_started_on_an_issue_page_counts_for_that_issue(
    client, fake_stripe, stripe_settings, tier, came_from, recorded
):
    page = client.get("/pricing/", {"from": came_from}).content.decode()
    response = client.post(
        "/pricing/subscribe/",
        {"tier": tier.pk, "interval": "month", "email": "new@example.org",
         "from": came_from},
    )  # fmt: skip

    assert response.status_code == 303
    assert ('name="from" value="/issues/convnets/"' in page) is (
        recorded != "checkout:/pricing/"
    )
    subscriber = Subscriber.objects.get()
    assert subscriber.consent_source == recorded
    assert subscriber.source == Subscriber.Source.CHECKOUT
