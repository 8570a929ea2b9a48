"""Sending through a django-anymail provider (anymail's own test backend)."""

from collections import Counter

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core import mail
from django.utils import timezone

from issues.sending import delivery, services
from issues.sending.models import Delivery
from subscribers.models import Subscriber
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db

ATTEMPTS: Counter = Counter()


class FlakyProvider(AnymailTestBackend):
    """A provider that is rate limited once per address, and refuses some."""

    def post_to_esp(self, payload, message):
        (to,) = message.to
        ATTEMPTS[to] += 1
        if to == "reader1@example.org":
            raise AnymailRecipientsRefused(email_message=message)
        if to == "reader2@example.org":
            raise AnymailAPIError("400 invalid header", status_code=400)
        if ATTEMPTS[to] == 1:
            raise AnymailAPIError("429 too many requests", status_code=429)
        return super().post_to_esp(payload, message)


def test_provider_throttling_is_retried_and_refusals_recorded(issue, settings):
    settings.EMAIL_BACKEND = "tests.sending.test_providers.FlakyProvider"
    settings.SENDING_RETRY_BASE_DELAY = 60
    ATTEMPTS.clear()
    mail.outbox = []
    make_subscribers(5)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)

    first = delivery.deliver_send(send_id=send.pk)
    assert first.next == "wait"  # the 429s wait for their backoff
    counts = Delivery.objects.filter(send=send).counts()
    assert counts == {**counts, "queued": 3, "bounced": 1, "failed": 1, "sent": 0}

    Delivery.objects.filter(send=send, status="queued").update(
        next_attempt_at=timezone.now()
    )
    assert delivery.deliver_send(send_id=send.pk).next == "done"
    sent = Delivery.objects.filter(send=send, status="sent")
    assert sent.count() == 3
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        sent.values_list("email", flat=True)
    )
    message = mail.outbox[0]
    assert message.extra_headers["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click"
    )
    assert "/unsubscribe/" in message.extra_headers["List-Unsubscribe"]
    assert any("/unsubscribe/" in content for content, _type in message.alternatives)
    refused = Subscriber.objects.get(email="reader1@example.org")
    assert refused.status == Subscriber.Status.BOUNCED
