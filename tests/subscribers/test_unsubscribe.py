import pytest
from django.test import Client
from django.urls import reverse

from subscribers.models import Subscriber
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_unsubscribe_get_shows_a_button_and_changes_nothing(client):
    sub = SubscriberFactory()

    response = client.get(reverse("subscribers:unsubscribe", args=[sub.token]))

    assert response.status_code == 200
    assert b"<button" in response.content
    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.ACTIVE


def test_one_click_post_unsubscribes_without_cookie_or_csrf_token():
    sub = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        reverse("subscribers:unsubscribe", args=[sub.token]),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.UNSUBSCRIBED
    assert sub.unsubscribed_at is not None
    assert not Subscriber.objects.receiving().exists()


def test_unsubscribing_twice_is_harmless():
    sub = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)
    url = reverse("subscribers:unsubscribe", args=[sub.token])
    first = client.post(url)
    sub.refresh_from_db()
    when = sub.unsubscribed_at

    second = client.post(url)

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    sub.refresh_from_db()
    assert sub.unsubscribed_at == when


def test_an_unknown_token_changes_nothing_and_gets_the_same_answer():
    sub = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)
    known = client.post(reverse("subscribers:unsubscribe", args=[sub.token]))

    unknown = client.post(reverse("subscribers:unsubscribe", args=["no-such-token"]))

    assert unknown.status_code == 200
    # The pages differ only where they echo their own address.
    assert unknown.content.replace(b"no-such-token", b"T") == known.content.replace(
        sub.token.encode(), b"T"
    )
    assert Subscriber.objects.count() == 1


def test_unsubscribing_does_not_touch_a_bounced_address():
    sub = SubscriberFactory(status=Subscriber.Status.BOUNCED)

    Client().post(reverse("subscribers:unsubscribe", args=[sub.token]))

    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.BOUNCED
