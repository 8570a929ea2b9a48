from datetime import timedelta

import pytest
from django.utils import timezone

from subscribers.billing.models import Membership
from subscribers.sessions import SESSION_KEY
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

PAID_MARKER = "PAIDMARKER-feed-7f3a"


def sign_in(client, subscriber):
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()


def test_account_shows_the_plan_next_payment_and_manage_billing(client, paid_member):
    subscriber, _ = paid_member()
    sign_in(client, subscriber)
    membership = Membership.objects.get(subscriber=subscriber)

    page = client.get("/account/").content.decode()

    assert "Supporter" in page
    assert "Next payment" in page
    assert membership.current_period_end.strftime("%Y") in page
    assert "Manage billing" in page
    assert f"/feed/private/{Membership.objects.get().feed_token}/" in page


def test_account_of_a_free_subscriber_offers_the_paid_tiers(client, paid_enabled):
    sign_in(client, SubscriberFactory())

    page = client.get("/account/").content.decode()

    assert "Become a paying supporter" in page
    assert "Manage billing" not in page and "/feed/private/" not in page


def test_a_canceling_member_sees_when_access_ends(client, paid_member, fake_stripe):
    subscriber, _ = paid_member()
    Membership.objects.update(cancel_at_period_end=True)
    sign_in(client, subscriber)

    assert "Ends on" in client.get("/account/").content.decode()


def _paid_issue():
    return IssueFactory(
        published=True,
        title="Paid feed issue",
        body=f"Free opening words.\n\n<!-- paywall -->\n\nThe paid part {PAID_MARKER}.",
    )


def test_the_private_feed_has_the_paid_part_and_the_public_feed_does_not(
    client, paid_member
):
    _paid_issue()
    subscriber, _ = paid_member()
    sign_in(client, subscriber)
    client.get("/account/")
    token = Membership.objects.get().feed_token

    private_rss = client.get(f"/feed/private/{token}/")
    private_atom = client.get(f"/feed/private/{token}/atom/")
    public_rss = client.get("/feed/")

    assert PAID_MARKER in private_rss.content.decode()
    assert PAID_MARKER in private_atom.content.decode()
    assert "private" in private_rss["Cache-Control"]
    assert PAID_MARKER not in public_rss.content.decode()
    assert "Free opening words" in public_rss.content.decode()


def test_the_private_feed_closes_when_access_ends_or_the_address_is_reset(
    client, paid_member
):
    _paid_issue()
    subscriber, _ = paid_member()
    sign_in(client, subscriber)
    client.get("/account/")
    old = Membership.objects.get().feed_token

    client.post("/billing/feed/reset/")
    new = Membership.objects.get().feed_token
    assert client.get(f"/feed/private/{old}/").status_code == 404
    assert client.get(f"/feed/private/{new}/").status_code == 200

    Membership.objects.update(
        status="past_due", past_due_since=timezone.now() - timedelta(days=30)
    )
    assert client.get(f"/feed/private/{new}/").status_code == 404
    assert client.get("/feed/private/made-up-token/").status_code == 404


def test_the_private_feed_links_everything_on_site_url(client, paid_member, settings):
    from tests.support.links import feed_links

    settings.SITE_URL = "https://news.example"
    IssueFactory(
        published=True,
        slug="paid-feed",
        body="Free [home](/).\n\n<!-- paywall -->\n\nPaid ![chart](/media/chart.png).",
    )
    subscriber, _ = paid_member()
    sign_in(client, subscriber)
    client.get("/account/")  # where the member finds the address
    token = Membership.objects.get(subscriber=subscriber).feed_token

    for url in (f"/feed/private/{token}/", f"/feed/private/{token}/atom/"):
        own, inside = feed_links(client.get(url).content.decode())

        assert f"https://news.example{url}" in own
        assert "https://news.example/issues/paid-feed/" in own
        assert all(link.startswith("https://news.example/") for link in own), own
        assert "https://news.example/media/chart.png" in inside
        assert all(link.startswith("https://news.example/") for link in inside)
