"""Tag pages list every issue and paper with the tag, a page at a time, and each
tag has its own RSS and Atom feed."""

import re
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from issues.models import Issue
from issues.views import ISSUES_PER_PAGE, PAPERS_PER_PAGE
from tests.factories.issues import IssueFactory, PaperFactory, TagFactory

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def vision():
    """A tag on more issues than one page shows, and on more papers than one page."""
    tag = TagFactory(slug="vision", name="Vision")
    now = timezone.now()
    for n in range(ISSUES_PER_PAGE * 2 + 5):
        IssueFactory(
            slug=f"issue-{n:03d}", title=f"Vision issue {n:03d}", published=True,
            published_at=now - timedelta(days=n), tags=[tag],
        )  # fmt: skip
    for n in range(PAPERS_PER_PAGE + 3):
        PaperFactory(slug=f"paper-{n:03d}", title=f"Paper {n:03d}").tags.add(tag)
    IssueFactory(slug="draft", title="Unpublished vision draft", tags=[tag])
    return tag


def parse_xml(data: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(data)  # noqa: S314 - our own feed, in a test


def titles(html: str, kind: str) -> list[str]:
    return re.findall(rf'class="{kind}-item-title" href="[^"]*">([^<]*)</a>', html)


def test_every_issue_and_paper_of_a_tag_is_on_one_of_its_pages(client, vision):
    pages = [client.get("/tags/vision/", {"page": n}) for n in (1, 2, 3)]
    assert [p.status_code for p in pages] == [200, 200, 200]
    html = [p.content.decode() for p in pages]

    issues = [t for page in html for t in titles(page, "issue")]
    papers = [t for page in html for t in titles(page, "paper")]
    assert issues == [f"Vision issue {n:03d}" for n in range(ISSUES_PER_PAGE * 2 + 5)]
    assert papers == [f"Paper {n:03d}" for n in range(PAPERS_PER_PAGE + 3)]
    assert [len(titles(page, "issue")) for page in html] == [20, 20, 5]
    assert [len(titles(page, "paper")) for page in html] == [50, 3, 0]
    assert not any("Unpublished vision draft" in page for page in html)
    # Past the papers' last page, the tag page shows no empty papers section.
    assert 'id="tag-papers"' not in html[2]


def test_a_page_past_the_last_or_not_a_number_is_not_found(client, vision):
    for page in ("4", "0", "-1", "two", "1.5"):
        assert client.get("/tags/vision/", {"page": page}).status_code == 404, page
    assert client.get("/tags/no-such-tag/").status_code == 404


def test_tag_pages_link_their_neighbours_and_say_their_number(client, vision):
    first = client.get("/tags/vision/").content.decode()
    middle = client.get("/tags/vision/?page=2").content.decode()
    last = client.get("/tags/vision/?page=3").content.decode()

    assert "<title>Vision · " in first and "page 1" not in first.split("</title>")[0]
    assert "<title>Vision · page 2 of 3 · " in middle
    assert "<title>Vision · page 3 of 3 · " in last
    assert '<link rel="prev"' not in first
    assert '<link rel="next" href="/tags/vision/?page=2">' in first
    # Page 1 is the tag's own address, never ?page=1.
    assert '<link rel="prev" href="/tags/vision/">' in middle
    assert '<link rel="next" href="/tags/vision/?page=3">' in middle
    assert '<a rel="prev" href="/tags/vision/">' in middle
    assert '<link rel="prev" href="/tags/vision/?page=2">' in last
    assert '<link rel="next"' not in last
    assert '<link rel="canonical" href="http://testserver/tags/vision/">' in first
    assert (
        '<link rel="canonical" href="http://testserver/tags/vision/?page=2">' in middle
    )


def test_a_tag_on_few_items_has_one_page_without_page_links(client, db):
    tag = TagFactory(slug="rare", name="Rare")
    IssueFactory(slug="one", title="The only one", published=True, tags=[tag])

    html = client.get("/tags/rare/").content.decode()

    assert titles(html, "issue") == ["The only one"]
    assert "No papers with this tag." in html
    assert 'rel="next"' not in html and 'rel="prev"' not in html
    assert 'class="pagination"' not in html


def test_the_tag_page_links_its_feeds(client, vision):
    html = client.get("/tags/vision/").content.decode()

    assert re.search(
        r'<link rel="alternate" type="application/rss\+xml" title="[^"]*Vision'
        r' \(RSS\)" href="/tags/vision/feed/">',
        html,
    )
    assert re.search(
        r'<link rel="alternate" type="application/atom\+xml" title="[^"]*Vision'
        r' \(Atom\)" href="/tags/vision/feed/atom/">',
        html,
    )


def test_a_tags_feeds_list_only_its_published_issues(client, settings, vision):
    settings.SITE_URL = "https://news.example"
    IssueFactory(slug="other", title="Other tag issue", published=True,
                 tags=[TagFactory(slug="llm", name="LLM")])  # fmt: skip
    IssueFactory(
        slug="later", title="Not out yet", status=Issue.Status.PUBLISHED,
        published_at=timezone.now() + timedelta(days=1), tags=[vision],
    )  # fmt: skip

    rss = parse_xml(client.get("/tags/vision/feed/").content)
    atom = parse_xml(client.get("/tags/vision/feed/atom/").content)

    rss_titles = [item.findtext("title") for item in rss.iter("item")]
    atom_titles = [
        entry.findtext(f"{ATOM}title") for entry in atom.iter(f"{ATOM}entry")
    ]
    newest = [f"Vision issue {n:03d}" for n in range(20)]
    assert rss_titles == newest
    assert atom_titles == newest
    assert rss.findtext("channel/link") == "https://news.example/tags/vision/"
    assert "Vision" in rss.findtext("channel/title")
    assert atom.find(f"{ATOM}link[@rel='self']").get("href") == (
        "https://news.example/tags/vision/feed/atom/"
    )


def test_an_unknown_tags_feed_is_not_found(client, db):
    assert client.get("/tags/nope/feed/").status_code == 404
    assert client.get("/tags/nope/feed/atom/").status_code == 404


def test_a_paid_issues_paid_part_never_reaches_its_tags_feed(client, db):
    tag = TagFactory(slug="llm", name="LLM")
    IssueFactory(
        slug="half", title="Half paid", published=True, tags=[tag],
        body="Free opening words.\n\n<!-- paywall -->\n\nSECRET-BELOW-BREAK",
    )  # fmt: skip
    IssueFactory(
        slug="whole", title="All paid", published=True, tags=[tag],
        access=Issue.Access.PAID, body="SECRET-PAID-ONLY",
    )  # fmt: skip

    for path in ("/tags/llm/feed/", "/tags/llm/feed/atom/"):
        feed = client.get(path).content.decode()
        assert "Free opening words." in feed
        assert "Half paid" in feed and "All paid" in feed
        assert "for paying supporters" in feed
        assert "SECRET-BELOW-BREAK" not in feed
        assert "SECRET-PAID-ONLY" not in feed
