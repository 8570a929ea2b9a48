from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from subscribers.billing.admin import billing_summary
from subscribers.billing.models import Membership
from tests.factories.billing import MembershipFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(
        get_user_model().objects.create_superuser("author", "a@example.org", "pw")
    )
    return client


def _member(status, amount, interval, **fields):
    return MembershipFactory(
        status=status, amount=amount, interval=interval, currency="usd", **fields
    )


def test_the_summary_counts_paying_members_mrr_and_recent_cancellations():
    _member("active", 800, "month")
    _member("active", 12000, "year")  # 10.00 a month
    _member("past_due", 800, "month")
    _member("trialing", 800, "month")
    _member("canceled", 800, "month", canceled_at=timezone.now() - timedelta(days=3))
    _member("canceled", 800, "month", canceled_at=timezone.now() - timedelta(days=40))

    summary = billing_summary()

    assert summary["paying_members"] == 3
    assert summary["trialing_members"] == 1
    assert summary["mrr"] == ["$26"]
    assert summary["cancellations_30d"] == 1


def test_the_membership_list_shows_the_figures_and_filters(admin_client, tier):
    _member("active", 800, "month", tier=tier)

    page = admin_client.get("/admin/billing/membership/").content.decode()

    assert "monthly recurring revenue" in page and "$8" in page
    assert "cancellations in the last 30 days" in page
    assert "By status" in page and "By tier" in page


def test_granting_a_complimentary_membership_opens_the_paywall(admin_client):
    membership = MembershipFactory()
    assert not membership.has_paid_access()

    form = admin_client.post(
        "/admin/billing/membership/",
        {"action": "grant_complimentary", "_selected_action": [membership.pk]},
    )
    done = admin_client.post(
        "/admin/billing/membership/",
        {
            "action": "grant_complimentary",
            "_selected_action": [membership.pk],
            "apply": "1",
            "until": "2099-01-31",
        },
        follow=True,
    )

    assert "Grant complimentary membership" in form.content.decode()
    assert "Granted complimentary membership to 1" in done.content.decode()
    membership.refresh_from_db()
    assert membership.complimentary and membership.complimentary_until.year == 2099
    assert membership.has_paid_access()


def test_tier_admin_pages_render(admin_client, tier):
    assert admin_client.get("/admin/billing/tier/").status_code == 200
    assert admin_client.get(f"/admin/billing/tier/{tier.pk}/change/").status_code == 200
    assert admin_client.get("/admin/billing/stripeevent/").status_code == 200


def test_subscribers_can_be_granted_complimentary_membership_from_their_list(
    admin_client,
):
    chosen = [SubscriberFactory(), SubscriberFactory()]
    MembershipFactory(subscriber=chosen[0], status="canceled")

    done = admin_client.post(
        "/admin/subscribers/subscriber/",
        {
            "action": "grant_complimentary_membership",
            "_selected_action": [s.pk for s in chosen],
            "apply": "1",
            "until": "",
        },
        follow=True,
    )

    assert "Granted complimentary membership to 2" in done.content.decode()
    for subscriber in chosen:
        membership = Membership.objects.get(subscriber=subscriber)
        assert membership.complimentary and membership.complimentary_until is None
        assert membership.has_paid_access()


def test_monthly_revenue_is_a_twelfth_of_yearly_amounts_per_currency():
    _member("active", 1000, "year")  # 83 cents a month, rounded down
    _member("active", 1000, "year")
    _member("active", 500, "month")
    MembershipFactory(status="active", amount=1200, interval="year", currency="eur")
    _member("active", None, "month")

    assert Membership.objects.paying().monthly_revenue() == {"eur": 100, "usd": 666}
