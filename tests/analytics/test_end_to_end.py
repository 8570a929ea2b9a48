"""A send through the real worker and SMTP server, then the pixel and the redirects
over real HTTP as a reader, a privacy proxy and a link scanner send them."""

import urllib.error
import urllib.request
from datetime import timedelta

from django.utils import timezone

from issues.analytics.reports import issue_report
from issues.sending import services
from issues.sending.emails.tracking import read_link_part
from issues.sending.models import Delivery, Send
from subscribers.models import Subscriber
from tests.analytics.conftest import flush
from tests.analytics.helpers import (
    APPLE_PROXY,
    IPHONE_MAIL,
    SCANNER,
    hidden_link,
    html_of,
    link_to,
    make_issue,
    pixel,
    text_link_to,
    text_of,
    tracked_links,
)
from tests.conftest import wait_for

CODE = "https://github.com/facebookresearch/ConvNeXt"
BLOG = "https://blog.example.org/post"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(base: str, path: str, agent: str) -> tuple[int, str]:
    """GET base+path without following a redirect; return status and Location."""
    request = urllib.request.Request(base + path, headers={"User-Agent": agent})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", "")


def test_a_sent_issue_reports_people_and_machines_apart(
    live_server, settings, smtp_server, celery_worker_factory
):
    settings.SITE_URL = live_server.url
    celery_worker_factory(
        extra_env={"EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}"}
    )
    issue = make_issue()
    for address, tracking in [
        ("reader@example.org", True),
        ("gateway@corp.example", True),
        ("private@example.org", False),
    ]:
        Subscriber.objects.create(email=address, status="active", tracking=tracking)

    services.publish_issue(issue=issue)
    wait_for(
        lambda: (
            len(smtp_server.messages) >= 3
            and Send.objects.get(issue=issue).status == Send.Status.DONE
        ),
        timeout=90,
        message="the issue emails",
    )
    received = {m.rcpt_tos[0]: m.message for m in smtp_server.messages}
    # The reader opens it an hour later; the gateway scans it as it arrives.
    Delivery.objects.filter(email="reader@example.org").update(
        sent_at=timezone.now() - timedelta(hours=1)
    )
    base = live_server.url
    reader, gateway = received["reader@example.org"], received["gateway@corp.example"]

    # Apple Mail Privacy Protection fetches the image first, then the reader reads
    # it on an iPhone and clicks the paper's code.
    assert get(base, pixel(reader), APPLE_PROXY)[0] == 200
    assert get(base, pixel(reader), IPHONE_MAIL)[0] == 200
    assert get(base, link_to(reader, CODE), IPHONE_MAIL) == (302, CODE)
    # Later, on a mail program that shows the plain text, the blog post.
    assert get(base, text_link_to(reader, BLOG), IPHONE_MAIL) == (302, BLOG)
    # The security gateway fetches the image and follows every link, the hidden
    # one too, each to where it was signed to go.
    assert get(base, pixel(gateway), SCANNER)[0] == 200
    links = list(dict.fromkeys(tracked_links(gateway)))
    assert hidden_link(gateway) in links
    for path in links:
        target = read_link_part(path.rstrip("/").rsplit("/", 1)[1])
        assert get(base, path, SCANNER) == (302, target.url)
    flush()

    report = issue_report(issue)
    assert (report.delivered, report.bounced, report.complaints) == (3, 0, 0)
    # The iPhone's open and each click (a click is an open too).
    assert (report.unique_opens, report.opens) == (1, 3)
    assert (report.unique_clicks, report.clicks) == (1, 2)
    assert report.machine_opens == 2
    assert report.machine_clicks == len(links)
    # The gateway followed the same links too: those count as machines, apart.
    assert {(link.url, link.unique_clicks) for link in report.links} >= {
        (CODE, 1),
        (BLOG, 1),
    }
    assert [(p.title, p.unique_clicks) for p in report.papers] == [
        ("A ConvNet for the 2020s", 1)
    ]
    private = html_of(received["private@example.org"])
    assert "/o/" not in private and "/r/" not in private
    assert 'href="https://blog.example.org/post"' in private
    private_text = text_of(received["private@example.org"])
    assert "/r/" not in private_text and f"({BLOG})" in private_text
