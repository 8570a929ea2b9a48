"""A marker from a paid section, looked for in every output that leaves Quire:
signed out, as a free subscriber and as a paying member."""

import json
import re

import pytest
from django.test import Client

from issues.models import Citation, Issue
from subscribers.sessions import SESSION_KEY
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory, PaperFactory, TagFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

PAID = "PAIDMARKER-q7z"  # below the paywall of a free issue
PAID_ONLY = "PAIDONLYMARKER-k2w"  # in an issue for paying supporters only
PAID_NOTE = "PAIDNOTEMARKER-v5j"  # a citation note of a paper cited below the paywall
PAID_PAPER_TITLE = "Sparse Zebracorn Transformers"
MARKERS = (PAID, PAID_ONLY, PAID_NOTE)
READERS = ["signed_out", "free", "paying"]


@pytest.fixture
def content(db):
    paper = PaperFactory(slug="zebracorn", title=PAID_PAPER_TITLE)
    free_paper = PaperFactory(slug="open-paper", title="An Openly Cited Paper")
    issue = IssueFactory(
        published=True,
        slug="mixed",
        title="Mixed issue",
        body=(
            "Freely readable opening about gradient noise. [[paper:open-paper]]\n\n"
            "<!-- paywall -->\n\n"
            f"The supporters' quokkanomics {PAID} of gradient noise.\n"
            "[[paper:zebracorn]]\n"
        ),
    )
    Citation.objects.filter(issue=issue, paper=paper).update(note=PAID_NOTE)
    paid_only = IssueFactory(
        published=True,
        slug="supporters-only",
        title="Supporters only issue",
        access=Issue.Access.PAID,
        body=f"Entirely for supporters about gradient noise: {PAID_ONLY}.",
    )
    assert Citation.objects.get(issue=issue, paper=paper).in_paid_part
    assert not Citation.objects.get(issue=issue, paper=free_paper).in_paid_part
    return {"issue": issue, "paid_only": paid_only, "paper": paper}


def reader_client(kind: str) -> tuple[Client, object]:
    client = Client()
    subscriber = None
    if kind != "signed_out":
        subscriber = SubscriberFactory(email=f"{kind}@example.org")
        if kind == "paying":
            MembershipFactory(subscriber=subscriber, status="active")
        session = client.session
        session[SESSION_KEY] = subscriber.pk
        session.save()
    return client, subscriber


def text(response) -> str:
    assert response.status_code == 200, response
    return response.content.decode()


def meta_descriptions(page: str) -> list[str]:
    return re.findall(
        r'<meta (?:property|name)="(?:og:description|twitter:description|description)"'
        r' content="([^"]*)"',
        page,
    )


@pytest.mark.parametrize("kind", READERS)
def test_issue_pages_show_the_paid_part_only_to_paying_members(
    content, kind, paid_enabled
):
    client, _ = reader_client(kind)

    mixed = text(client.get("/issues/mixed/"))
    paid_only = text(client.get("/issues/supporters-only/"))

    assert "Freely readable opening" in mixed
    assert (PAID in mixed) is (kind == "paying")
    assert (PAID_NOTE in mixed) is (kind == "paying")
    assert (PAID_ONLY in paid_only) is (kind == "paying")
    for page in (mixed, paid_only):
        offer = 'href="/pricing/?from=/issues/' in page and "Become a supporter" in page
        assert offer is (kind != "paying")


@pytest.mark.parametrize("kind", READERS)
def test_opengraph_and_twitter_descriptions_never_hold_paid_text(content, kind):
    client, _ = reader_client(kind)

    for path in ("/issues/mixed/", "/issues/supporters-only/"):
        descriptions = meta_descriptions(text(client.get(path)))
        assert descriptions, f"no meta descriptions on {path}"
        for description in descriptions:
            assert not any(marker in description for marker in MARKERS)


@pytest.mark.parametrize("kind", READERS)
def test_public_rss_and_atom_never_hold_paid_text(content, kind):
    client, _ = reader_client(kind)

    for path in ("/feed/", "/feed/atom/"):
        feed = text(client.get(path))
        assert "Freely readable opening" in feed
        assert not any(marker in feed for marker in MARKERS), path


@pytest.mark.parametrize("kind", READERS)
def test_tag_feeds_never_hold_paid_text(content, kind):
    tag = TagFactory(slug="noise", name="Noise")
    content["issue"].tags.add(tag)
    content["paid_only"].tags.add(tag)
    client, _ = reader_client(kind)

    for path in ("/tags/noise/feed/", "/tags/noise/feed/atom/"):
        feed = text(client.get(path))
        assert "Freely readable opening" in feed
        assert "Supporters only issue" in feed
        assert not any(marker in feed for marker in MARKERS), path


@pytest.mark.parametrize("kind", READERS)
def test_the_private_feed_exists_only_for_paying_members_and_holds_the_paid_part(
    content, kind
):
    client, subscriber = reader_client(kind)

    account = text(client.get("/account/")) if subscriber else ""
    tokens = re.findall(r"/feed/private/([^/\"]+)/", account)

    if kind != "paying":
        assert tokens == []
        return
    feed = text(client.get(f"/feed/private/{tokens[0]}/"))
    atom = text(client.get(f"/feed/private/{tokens[0]}/atom/"))
    assert PAID in feed and PAID_ONLY in feed
    assert PAID in atom and PAID_ONLY in atom
    # The address is the key: it works without the session cookie.
    assert PAID in text(Client().get(f"/feed/private/{tokens[0]}/"))


@pytest.mark.parametrize("kind", READERS)
def test_search_results_and_snippets_never_hold_paid_text(content, kind):
    client, _ = reader_client(kind)

    found = text(client.get("/search/", {"q": "gradient noise"}))
    # A word found only below the paywall finds nothing: only free text is searched.
    by_paid_word = text(client.get("/search/", {"q": "quokkanomics"}))

    assert "Mixed issue" in found
    assert "Mixed issue" not in by_paid_word
    for page in (found, by_paid_word):
        assert not any(marker in page for marker in MARKERS)


@pytest.mark.parametrize("kind", READERS)
def test_the_sitemap_never_holds_paid_text(content, kind):
    client, _ = reader_client(kind)

    sitemap = text(client.get("/sitemap.xml"))

    assert "/issues/mixed/" in sitemap
    assert not any(marker in sitemap for marker in MARKERS)


@pytest.mark.parametrize("kind", READERS)
def test_bibtex_lists_papers_cited_in_the_paid_part_only_to_paying_members(
    content, kind
):
    client, _ = reader_client(kind)

    issue_bib = text(client.get("/issues/mixed/bibtex"))
    paid_only_bib = text(client.get("/issues/supporters-only/bibtex"))
    paper_bib = text(client.get("/papers/zebracorn/bibtex"))

    assert "An Openly Cited Paper" in issue_bib
    assert (PAID_PAPER_TITLE in issue_bib) is (kind == "paying")
    for bib in (issue_bib, paid_only_bib, paper_bib):
        assert not any(marker in bib for marker in MARKERS)


@pytest.mark.parametrize("kind", READERS)
def test_a_paper_page_shows_notes_from_a_paid_part_only_to_paying_members(
    content, kind
):
    client, _ = reader_client(kind)

    page = text(client.get("/papers/zebracorn/"))

    assert (PAID_NOTE in page) is (kind == "paying")


@pytest.mark.parametrize("kind", ["free", "paying"])
def test_the_personal_data_export_never_holds_paid_text(content, kind):
    client, subscriber = reader_client(kind)

    response = client.get("/account/export/")

    assert response.status_code == 200
    data = response.content.decode()
    exported = json.loads(data)
    assert exported["email"] == subscriber.email
    if kind == "paying":
        assert exported["membership"]["status"] == "active"
    else:
        assert exported["membership"] is None
    assert not any(marker in data for marker in MARKERS)


def test_a_page_seen_by_a_paying_member_is_never_served_to_others(content):
    paying, _ = reader_client("paying")
    assert PAID in text(paying.get("/issues/mixed/"))

    for kind in ("signed_out", "free", "signed_out"):
        client, _ = reader_client(kind)
        page = text(client.get("/issues/mixed/"))
        assert PAID not in page, kind
        assert "Freely readable opening" in page
