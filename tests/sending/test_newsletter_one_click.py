"""End to end, with a real Celery worker process and SMTP server: two newsletters,
an issue of each sent, and each email's RFC 8058 one-click POST leaves only the
newsletter that email came from."""

import re
import urllib.request

import pytest

from issues.sending import services
from newsletter.models import Newsletter
from subscribers.models import Subscriber, Subscription
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory
from tests.sending.test_worker import wait_until_done, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def one_click(message) -> int:
    """POST as a mail program does: no cookie, no CSRF token, no login."""
    url = re.match(r"<(https?://[^>]+)>", message["List-Unsubscribe"]).group(1)
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request) as response:
        return response.status


def newsletters_of(subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber).values_list(
            "newsletter__slug", flat=True
        )
    )


def test_each_email_s_one_click_post_leaves_only_its_newsletter(
    celery_worker_factory, smtp_server, live_server, settings
):
    settings.SITE_URL = live_server.url  # the worker writes links to this server
    monthly = Newsletter.default()
    monthly.name, monthly.slug = "The monthly issue", "monthly"
    monthly.save()
    news = Newsletter.objects.create(
        name="Announcements", slug="news", list_id="news.example.org", position=1
    )
    ada, bob = SubscriberFactory(), SubscriberFactory()
    assert newsletters_of(ada) == newsletters_of(bob) == {"monthly", "news"}
    celery_worker_factory(extra_env=worker_env(smtp_server))

    wait_until_done(services.publish_issue(issue=IssueFactory(title="May issue")))
    wait_until_done(
        services.publish_issue(issue=IssueFactory(title="Launch", newsletter=news))
    )

    emails = {
        (item.rcpt_tos[0], item.message["Subject"]): item.message
        for item in smtp_server.messages
    }
    assert len(emails) == len(smtp_server.messages) == 4  # each once
    assert emails[(ada.email, "Launch")]["List-Id"] == (
        "Announcements <news.example.org>"
    )
    assert emails[(ada.email, "May issue")]["List-Id"] == (
        "The monthly issue <monthly.localhost>"
    )

    # Ada leaves the monthly issue from its email: she keeps the announcements.
    assert one_click(emails[(ada.email, "May issue")]) == 200
    assert newsletters_of(ada) == {"news"}
    assert Subscriber.objects.get(pk=ada.pk).status == Subscriber.Status.ACTIVE
    # Bob leaves the announcements from theirs: he keeps the monthly issue.
    assert one_click(emails[(bob.email, "Launch")]) == 200
    assert newsletters_of(bob) == {"monthly"}
    assert list(Subscriber.objects.receiving(newsletter=monthly.pk)) == [bob]
    assert list(Subscriber.objects.receiving(newsletter=news.pk)) == [ada]

    # Ada's other email leaves her last newsletter: she is unsubscribed.
    assert one_click(emails[(ada.email, "Launch")]) == 200
    ada.refresh_from_db()
    assert ada.status == Subscriber.Status.UNSUBSCRIBED
    assert newsletters_of(bob) == {"monthly"}
    assert Subscriber.objects.get(pk=bob.pk).status == Subscriber.Status.ACTIVE
