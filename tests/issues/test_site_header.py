"""The site header: "Sign in" for readers, "Account" once a subscriber signs in."""

import re

import pytest
from django.core.cache import cache
from django.test import Client

from tests.factories.issues import IssueFactory, PaperFactory, TagFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

NAV_RE = re.compile(r'<nav class="site-nav"[^>]*>(.*?)</nav>', re.S)
LINK_RE = re.compile(r'<a[^>]*href="([^"]+)"[^>]*>([^<]+)</a>')


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Sign-in requests are rate limited in the shared cache."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def pages(db):
    tag = TagFactory(name="Vision", slug="vision")
    paper = PaperFactory(slug="convnext", title="A ConvNet for the 2020s")
    issue = IssueFactory(
        slug="open", published=True, title="Open issue", tags=[tag],
        body="Words about convolutions.\n\n[[paper:convnext]]",
    )  # fmt: skip
    return [
        "/",
        "/archive/",
        issue.get_absolute_url(),
        "/papers/",
        paper.get_absolute_url(),
        tag.get_absolute_url(),
        "/search/?q=convolutions",
        "/subscribe/",
        "/account/login/",
        "/pricing/",
        "/account/",
    ]


def header_links(client: Client, url: str) -> dict[str, str]:
    response = client.get(url)
    assert response.status_code == 200, url
    nav = NAV_RE.search(response.content.decode()).group(1)
    return {text.strip(): href for href, text in LINK_RE.findall(nav)}


def sign_in(client, mailoutbox, django_capture_on_commit_callbacks, email):
    """Sign in the way a subscriber does: the emailed link, then its button."""
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/login/", {"email": email})
    link = re.search(r"https?://[^/\s]+(/account/login/\S+/)", mailoutbox[-1].body)
    assert client.post(link.group(1)).status_code == 302


def test_every_page_offers_sign_in_to_a_reader_who_is_not_signed_in(client, pages):
    for url in pages[:-1]:
        links = header_links(client, url)
        assert links.get("Sign in") == "/account/login/", url
        assert "Account" not in links, url


def test_a_signed_in_subscriber_sees_account_on_every_page(
    client, pages, mailoutbox, django_capture_on_commit_callbacks
):
    SubscriberFactory(email="ada@example.org")
    sign_in(client, mailoutbox, django_capture_on_commit_callbacks, "ada@example.org")

    # (The sign-in page itself sends a signed-in subscriber on to the account.)
    for url in [url for url in pages if url != "/account/login/"]:
        links = header_links(client, url)
        assert links.get("Account") == "/account/", url
        assert "Sign in" not in links, url


def test_signing_out_brings_sign_in_back(
    client, pages, mailoutbox, django_capture_on_commit_callbacks
):
    SubscriberFactory(email="ada@example.org")
    sign_in(client, mailoutbox, django_capture_on_commit_callbacks, "ada@example.org")
    client.post("/account/logout/")

    assert "Sign in" in header_links(client, "/")


def test_a_signed_in_reader_never_gets_the_cached_page_of_anonymous_readers(
    pages, mailoutbox, django_capture_on_commit_callbacks
):
    issue_url = pages[2]
    # Anonymous readers fill the page cache; this reader's browser keeps its ETag.
    Client().get(issue_url)
    reader = Client()
    before = reader.get(issue_url)
    assert "Sign in" in header_links(Client(), issue_url)
    SubscriberFactory(email="ada@example.org")
    sign_in(reader, mailoutbox, django_capture_on_commit_callbacks, "ada@example.org")

    fresh = header_links(reader, issue_url)
    revalidated = reader.get(issue_url, headers={"If-None-Match": before["ETag"]})

    assert fresh.get("Account") == "/account/" and "Sign in" not in fresh
    # Not "304 Not Modified": the browser's copy still says "Sign in".
    assert revalidated.status_code == 200
    assert ">Account</a>" in revalidated.content.decode()
