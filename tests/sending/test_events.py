"""Provider tracking webhooks at /email/events/ (django-anymail, Postmark here)."""

import base64
import json
from pathlib import Path

import pytest
from django.utils import timezone

from issues.sending.models import EmailEvent
from subscribers.models import Subscriber
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sending"
URL = "/email/events/postmark/tracking/"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    # Only the provider Quire sends through has its webhook mounted.
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}


def post(client, name: str, *, auth="hook:s3cret", **changes):
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    payload.update(changes)
    headers = {}
    if auth:
        headers["HTTP_AUTHORIZATION"] = (
            "Basic " + base64.b64encode(auth.encode()).decode()
        )
    return client.post(
        URL, json.dumps(payload), content_type="application/json", **headers
    )


def status(email: str) -> str:
    return Subscriber.objects.get(email=email).status


def test_webhook_without_the_secret_is_refused(client):
    make_subscribers(4)
    assert post(client, "postmark-hard-bounce", auth=None).status_code == 400
    assert post(client, "postmark-hard-bounce", auth="hook:wrong").status_code == 400
    assert status("reader1@example.org") == "active"
    assert not EmailEvent.objects.exists()


def test_hard_bounce_suppresses_at_once(client):
    make_subscribers(4)
    before = timezone.now()
    assert post(client, "postmark-hard-bounce").status_code == 200
    assert status("reader1@example.org") == Subscriber.Status.BOUNCED
    assert not Subscriber.objects.receiving().filter(email="reader1@example.org")
    # Taken off the list now: the growth figures count them as leaving on this day.
    left = Subscriber.objects.get(email="reader1@example.org").unsubscribed_at
    assert left is not None and before <= left <= timezone.now()


def test_complaint_suppresses_at_once(client):
    make_subscribers(4)
    assert post(client, "postmark-complaint").status_code == 200
    assert status("reader3@example.org") == Subscriber.Status.COMPLAINED
    assert Subscriber.objects.get(email="reader3@example.org").unsubscribed_at


def test_soft_bounces_suppress_only_after_three_in_a_row(client):
    make_subscribers(4)
    post(client, "postmark-soft-bounce", ID=1, BouncedAt="2026-11-20T10:00:00Z")
    post(client, "postmark-soft-bounce", ID=2, BouncedAt="2026-11-21T10:00:00Z")
    assert status("reader2@example.org") == "active"
    # A delivery in between starts the count again.
    post(client, "postmark-delivery", DeliveredAt="2026-11-22T10:00:00Z")
    post(client, "postmark-soft-bounce", ID=3, BouncedAt="2026-11-23T10:00:00Z")
    post(client, "postmark-soft-bounce", ID=4, BouncedAt="2026-11-24T10:00:00Z")
    assert status("reader2@example.org") == "active"
    post(client, "postmark-soft-bounce", ID=5, BouncedAt="2026-11-25T10:00:00Z")
    assert status("reader2@example.org") == Subscriber.Status.BOUNCED


def test_a_repeated_event_is_counted_once(client):
    make_subscribers(4)
    for _ in range(3):
        assert post(client, "postmark-soft-bounce", ID=7).status_code == 200
    assert EmailEvent.objects.count() == 1
    assert status("reader2@example.org") == "active"
