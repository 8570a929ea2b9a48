"""RFC 8058: the one-click unsubscribe a mail program performs from the header."""

import re
import urllib.request

import pytest

from issues.sending import delivery, services
from subscribers.models import Subscriber
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db(transaction=True)


def header_url(message) -> str:
    return re.match(r"<(https?://[^>]+)>", message["List-Unsubscribe"]).group(1)


def test_one_click_post_from_the_header_unsubscribes(
    live_server, settings, smtp_settings
):
    settings.SITE_URL = live_server.url
    reader, other = make_subscribers(2)
    send = services.publish_issue(issue=IssueFactory())
    delivery.freeze_audience(send=send)
    delivery.deliver_send(send_id=send.pk)
    message = next(
        m.message for m in smtp_settings.messages if m.rcpt_tos == [reader.email]
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header_url(message)

    # A GET (a link scanner, a prefetch) changes nothing.
    with urllib.request.urlopen(url) as response:
        assert response.status == 200
    assert Subscriber.objects.get(pk=reader.pk).status == Subscriber.Status.ACTIVE

    # Exactly what a mail program sends: no cookie, no CSRF token, no login.
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200

    assert Subscriber.objects.get(pk=reader.pk).status == Subscriber.Status.UNSUBSCRIBED
    assert Subscriber.objects.get(pk=other.pk).status == Subscriber.Status.ACTIVE
    assert not Subscriber.objects.receiving().filter(pk=reader.pk).exists()
