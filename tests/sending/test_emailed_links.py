"""Every link Quire emails answers on the address the site runs on.

Signup, confirmation, sign-in and a published issue go through the real parts (the
web views, a Celery worker process, an SMTP server); then every link in every message
(both parts and the List-Unsubscribe header) is fetched over HTTP from the running
server, with GET only, which must change nothing.
"""

import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache

from issues.sending import services
from issues.sending.emails.tracking import read_link_part
from subscribers.billing.services import grant_complimentary_membership
from subscribers.models import Subscriber
from tests.billing.stripe_fake import PAID_ENV
from tests.conftest import wait_for
from tests.factories.issues import IssueFactory, PaperFactory
from tests.support.links import html_links

pytestmark = pytest.mark.django_db(transaction=True)

READER = "ada@example.org"
EXTERNAL_HOSTS = {"arxiv.org", "doi.org", "github.com"}

BODY = """## Papers of the month

Scaling works[^1], and [[paper:convnext]] shows it inside a sentence; so does the
[archive](/archive/).

[[arxiv:2201.03545]]

[[doi:10.1109/CVPR52688.2022.01042]]

<!-- paywall -->

For supporters: [[paper:ldm]] again.

[^1]: Hoffmann et al.
"""

_TEXT_URL = re.compile(r"https?://[^\s<>\"')]+")


_TRACKED = re.compile(r"^/r/[^/]+/(?P<link>[^/]+)/$")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def unwrap(url: str) -> str:
    """Return where a tracked link leads, after checking its redirect goes there."""
    match = _TRACKED.match(urlsplit(url).path)
    if match is None:
        return url
    link = read_link_part(match.group("link"))
    assert link is not None, url
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(url, timeout=30)
    except urllib.error.HTTPError as error:
        assert (error.code, error.headers["Location"]) == (302, link.url), url
    else:
        raise AssertionError(f"{url} did not redirect")
    return link.url


def links_in(message) -> set[str]:
    """Return every http(s) address in a message: both parts and its headers
    (a tracked link as the address it leads to)."""
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    found = {unwrap(url.rstrip(".,;")) for url in _TEXT_URL.findall(text)}
    found |= {
        unwrap(url) for url in html_links(html) if url.startswith(("http:", "https:"))
    }
    header = message.get("List-Unsubscribe", "")
    found |= set(re.findall(r"<(https?://[^>]+)>", header))
    return found


def wait_for_messages(smtp_server, count: int, what: str):
    return wait_for(
        lambda: len(smtp_server.messages) >= count and smtp_server.messages,
        timeout=90,
        interval=0.2,
        message=what,
    )[count - 1].message


def fetch(url: str) -> tuple[int, bool]:
    """GET url (following redirects); return its status and whether it stayed here."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            final = response.url
            return response.status, urlsplit(final).netloc == urlsplit(url).netloc
    except urllib.error.HTTPError as error:
        return error.code, True


def state() -> list[tuple]:
    return list(
        Subscriber.objects.order_by("pk").values_list(
            "pk", "status", "confirmed_at", "last_login_at", "unsubscribed_at"
        )
    )


def test_every_emailed_link_answers_200_on_the_running_site(
    live_server, settings, smtp_server, celery_worker_factory, client
):
    settings.SITE_URL = live_server.url
    # Paid subscriptions on, so that the free reader's email invites them to pay.
    for name, value in PAID_ENV.items():
        setattr(settings, name, value)
    cache.clear()  # the signup and sign-in rate limits
    celery_worker_factory(
        extra_env={
            "EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}",
            **PAID_ENV,
        }
    )
    PaperFactory(
        slug="convnext", arxiv_id="2201.03545", title="A ConvNet for the 2020s",
        code_url="https://github.com/facebookresearch/ConvNeXt",
    )  # fmt: skip
    PaperFactory(
        slug="ldm", arxiv_id="", doi="10.1109/CVPR52688.2022.01042",
        title="High-Resolution Image Synthesis with Latent Diffusion Models",
    )  # fmt: skip
    issue = IssueFactory(slug="papers-of-the-month", body=BODY)
    paid = Subscriber.objects.create(email="supporter@example.org", status="active")
    grant_complimentary_membership(subscribers=Subscriber.objects.filter(pk=paid.pk))

    site_url = f"{live_server.url}/"
    links: dict[str, set[str]] = {}
    answers: dict[str, tuple[int, bool]] = {}

    def follow_links(name: str, message) -> None:
        """Fetch the message's links on the site the moment it arrives, as a reader
        would (a confirmation link works once, so later it rightly answers 404)."""
        links[name] = links_in(message)
        before = state()
        for url in sorted(links[name]):
            if url.startswith(site_url):
                answers[url] = fetch(url)
        # GET shows pages and never acts: nobody confirmed, signed in or left.
        assert state() == before, name

    # Subscribe: the confirmation email. Confirm: the welcome email.
    client.post("/subscribe/", {"email": READER, "name": "Ada", "page": "/"})
    confirmation = wait_for_messages(smtp_server, 1, "the confirmation email")
    follow_links("confirmation", confirmation)
    confirm_url = next(u for u in links_in(confirmation) if "/subscribe/confirm/" in u)
    assert client.post(urlsplit(confirm_url).path).status_code == 200
    follow_links("welcome", wait_for_messages(smtp_server, 2, "the welcome email"))
    # Sign in: the sign-in link.
    client.post("/account/login/", {"email": READER})
    follow_links("sign-in", wait_for_messages(smtp_server, 3, "the sign-in email"))
    # Publish: the issue, to a free reader and a supporter.
    services.publish_issue(issue=issue)
    wait_for_messages(smtp_server, 5, "the issue emails")
    recipients = {rcpt for m in smtp_server.messages[3:] for rcpt in m.rcpt_tos}
    assert recipients == {READER, paid.email}
    for n, received in enumerate(smtp_server.messages[3:]):
        follow_links(f"issue {n}", received.message)
        header = received.message["List-Unsubscribe"]
        one_click = re.match(r"<(https?://[^>]+)>", header).group(1)
        assert answers[one_click] == (200, True)

    everything = set().union(*links.values())
    site = {url for url in everything if url.startswith(site_url)}
    external = everything - site
    assert answers == {url: (200, True) for url in site}

    # Each flow's own links are there, all on the running site.
    paths = {urlsplit(url).path for url in site}
    reader = Subscriber.objects.get(email=READER)
    for expected in (
        "/", "/account/", "/archive/", "/pricing/", "/papers/convnext/",
        "/papers/ldm/", f"/issues/{issue.slug}/", f"/unsubscribe/{reader.token}/",
        f"/unsubscribe/{paid.token}/",
    ):  # fmt: skip
        assert expected in paths, (expected, sorted(paths))
    assert any(p.startswith("/subscribe/confirm/") for p in paths)
    assert any(p.startswith("/account/login/") for p in paths)
    for name, found in links.items():
        assert found & site, name
    # Nothing else: every other link leaves for a paper's home, over https.
    for url in external:
        parts = urlsplit(url)
        assert parts.scheme == "https", url
        assert parts.netloc in EXTERNAL_HOSTS, url
        assert parts.path.strip("/"), url
    assert {urlsplit(url).netloc for url in external} == EXTERNAL_HOSTS
