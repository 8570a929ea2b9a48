""" "Delete me" for a paying member: Stripe stops charging before the record goes."""

import pytest
from django.urls import reverse

from subscribers import services
from subscribers.billing.models import Membership
from subscribers.models import Subscriber, Suppression
from subscribers.sessions import SESSION_KEY

pytestmark = pytest.mark.django_db


def _signed_in(client, subscriber):
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()


def test_deleting_a_paying_member_cancels_the_stripe_subscription_first(
    client, paid_member, fake_stripe
):
    subscriber, subscription = paid_member()
    _signed_in(client, subscriber)

    response = client.post(reverse("subscribers:delete"), {"confirm": "yes"})

    assert response.status_code == 200
    assert fake_stripe.subscriptions[subscription["id"]]["status"] == "canceled"
    assert fake_stripe.calls("DELETE", f"/v1/subscriptions/{subscription['id']}")
    assert not Subscriber.objects.exists()
    assert not Membership.objects.exists()
    assert Suppression.objects.get().reason == "deleted"


def test_when_stripe_is_down_delete_me_erases_nothing_and_says_so(
    client, paid_member, fake_stripe
):
    subscriber, subscription = paid_member()
    _signed_in(client, subscriber)
    fake_stripe.down = True

    response = client.post(
        reverse("subscribers:delete"), {"confirm": "yes"}, follow=True
    )

    assert "nothing was deleted" in response.content.decode()
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
    assert Membership.objects.filter(subscriber=subscriber).exists()
    assert not Suppression.objects.exists()


def test_deleting_someone_without_a_paid_plan_calls_no_one(db, fake_stripe):
    subscriber = Subscriber.objects.create(email="free@example.org", status="active")

    services.delete_subscriber(subscriber=subscriber)

    assert not fake_stripe.calls("DELETE", "/v1/subscriptions/")
    assert not Subscriber.objects.exists()
