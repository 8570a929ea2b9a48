"""A sent issue and the tracked addresses in its emails, for the analytics tests."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

from django.utils import timezone

from issues.sending import services
from issues.sending.models import Delivery
from tests.factories.issues import IssueFactory, PaperFactory
from tests.sending.conftest import make_subscribers, parse
from tests.support.links import html_links

# Real user agents, as they arrive.
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
APPLE_PROXY = "Mozilla/5.0"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
    "(via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
OUTLOOK = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
SCANNER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/119.0.6045.105 Safari/537.36"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
REQUESTS = "python-requests/2.31.0"

BODY = """A paper: [[paper:convnext]].

More reading at [the blog](https://blog.example.org/post) and
[the code](https://github.com/facebookresearch/ConvNeXt).
"""


def make_issue():
    PaperFactory(
        slug="convnext", arxiv_id="2201.03545", title="A ConvNet for the 2020s",
        code_url="https://github.com/facebookresearch/ConvNeXt",
    )  # fmt: skip
    return IssueFactory(slug="convnets", title="ConvNets are back", body=BODY)


def send_issue(issue, outbox, *, subscribers: int = 2, age_minutes: int = 60, **fields):
    """Send the issue to new subscribers; return {address: parsed message}."""
    from tests.analytics.conftest import run_send

    make_subscribers(subscribers, **fields)
    run_send(services.publish_issue(issue=issue))
    # Readers open mail later than scanners do.
    Delivery.objects.update(sent_at=timezone.now() - timedelta(minutes=age_minutes))
    messages = [parse(path.read_bytes()) for path in sorted(outbox.glob("*.eml"))]
    return {m["To"]: m for m in messages}


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def text_link_to(message, url: str) -> str:
    """The tracked address in the message's plain text that leads to url."""
    from issues.sending.emails.tracking import read_link_part

    for found in re.findall(r"https?://[^\s()]+", text_of(message)):
        path = urlsplit(found).path
        if re.match(r"^/r/[^/]+/[^/]+/$", path):
            link = read_link_part(path.rstrip("/").rsplit("/", 1)[1])
            if link is not None and link.url == url:
                return path
    raise AssertionError(f"no tracked link to {url} in the plain text")


def tracked_links(message) -> list[str]:
    """The message's tracked addresses (paths), in order, the hidden one included."""
    return [
        urlsplit(url).path
        for url in html_links(html_of(message))
        if re.match(r"^/r/[^/]+/[^/]+/$", urlsplit(url).path)
    ]


def pixel(message) -> str:
    (found,) = [
        urlsplit(url).path
        for url in html_links(html_of(message))
        if urlsplit(url).path.startswith("/o/")
    ]
    return found


def hidden_link(message) -> str:
    match = re.search(
        r'<div aria-hidden="true"[^>]*><a href="([^"]+)"', html_of(message)
    )
    return urlsplit(match.group(1)).path


def link_to(message, url: str) -> str:
    """The tracked address in the message that leads to url."""
    from issues.sending.emails.tracking import read_link_part

    for path in tracked_links(message):
        link = read_link_part(path.rstrip("/").rsplit("/", 1)[1])
        if link is not None and link.url == url and link.number:
            return path
    raise AssertionError(f"no tracked link to {url}")
