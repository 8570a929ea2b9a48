"""The issue page as readers of Ghost or Substack expect it: previous and next
issues, the author's byline, link previews (og:image, JSON-LD), share links, a
table of contents, old addresses that redirect, and counts on the issue cards."""

import io
import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from issues import metadata
from issues.models import Issue, IssueSlug, Paper
from issues.sending.emails import render_segment
from issues.services import delete_papers, record_citations
from issues.views import _neighbours
from newsletter.models import Publication
from tests.factories.issues import (
    CitationFactory,
    IssueFactory,
    PaperFactory,
    issue_admin_form,
)
from tests.security.test_content_limits import _png_claiming

pytestmark = pytest.mark.django_db

HOSTILE = "</script><script>alert(1)</script><!-- \"quotes\" & 'apostrophes' \u2028"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "https://news.example"
    return settings.MEDIA_ROOT


def _png(size=(8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return out.getvalue()


def _page(client, issue) -> str:
    response = client.get(issue.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


class _Elements(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(html: str, tag: str) -> list[dict]:
    parser = _Elements()
    parser.feed(html)
    return [attrs for name, attrs in parser.tags if name == tag]


def _meta(html: str, prop: str) -> str | None:
    for attrs in _elements(html, "meta"):
        if attrs.get("property") == prop or attrs.get("name") == prop:
            return attrs.get("content")
    return None


def _json_ld(html: str) -> dict:
    (block,) = re.findall(
        r'<script type="application/ld\+json">(.*?)</script>', html, re.S
    )
    return json.loads(block)


def _issues_at(*days_ago: int, **kwargs) -> list[Issue]:
    now = timezone.now()
    return [
        IssueFactory(
            title=f"Issue from {d} days ago",
            slug=f"ago-{d}",
            published=True,
            published_at=now - timedelta(days=d),
            **kwargs,
        )  # fmt: skip
        for d in days_ago
    ]


# --- Previous and next ----------------------------------------------------------------
def _neighbour_links(html: str) -> dict[str, str]:
    return {
        attrs["rel"]: attrs["href"]
        for attrs in _elements(html, "a")
        if attrs.get("rel") in ("prev", "next")
    }


def test_an_issue_links_the_published_issues_before_and_after_it(client):
    oldest, middle, newest = _issues_at(30, 20, 10)
    IssueFactory(slug="a-draft")  # never linked
    IssueFactory(slug="coming-up", scheduled=True)
    IssueFactory(
        slug="not-yet", status=Issue.Status.PUBLISHED,
        published_at=timezone.now() + timedelta(days=2),
    )  # fmt: skip
    IssueFactory(
        slug="taken-down", status=Issue.Status.UNPUBLISHED,
        published_at=timezone.now() - timedelta(days=15),
    )  # fmt: skip

    assert _neighbour_links(_page(client, middle)) == {
        "prev": oldest.get_absolute_url(),
        "next": newest.get_absolute_url(),
    }
    assert _neighbour_links(_page(client, oldest)) == {
        "next": middle.get_absolute_url()
    }
    assert _neighbour_links(_page(client, newest)) == {
        "prev": middle.get_absolute_url()
    }


def test_issues_published_at_the_same_moment_are_ordered_by_id(client):
    at = timezone.now() - timedelta(days=1)
    first, second, third = (
        IssueFactory(slug=f"same-{n}", published=True, published_at=at)
        for n in range(3)
    )
    assert _neighbour_links(_page(client, second)) == {
        "prev": first.get_absolute_url(),
        "next": third.get_absolute_url(),
    }


def test_a_paid_only_issue_is_linked_as_the_archive_lists_it(client):
    (older,) = _issues_at(5)
    (paid,) = _issues_at(3, access=Issue.Access.PAID)
    assert _neighbour_links(_page(client, older)) == {"next": paid.get_absolute_url()}


def test_staff_previewing_a_draft_see_no_neighbours(staff_client):
    _issues_at(5)
    draft = IssueFactory(slug="draft-preview")
    assert _neighbour_links(_page(staff_client, draft)) == {}


def test_the_newest_issue_links_one_published_after_it_although_cached(client):
    (older,) = _issues_at(5)
    assert "next" not in _neighbour_links(_page(client, older))  # cached now

    newer = IssueFactory(slug="brand-new", published=True)

    assert _neighbour_links(_page(client, older))["next"] == newer.get_absolute_url()


def test_the_neighbours_take_one_query_and_none_for_a_draft():
    issues = _issues_at(3, 2, 1)
    draft = IssueFactory(slug="lone-draft")
    counts = []
    for issue in (Issue.objects.get(pk=issues[1].pk), draft):
        with CaptureQueriesContext(connection) as captured:
            _neighbours(issue)
        counts.append(len(captured))
    assert counts == [1, 0]


# --- The author's byline --------------------------------------------------------------
def test_the_byline_names_the_publications_author_with_their_photo(client):
    publication = Publication.load()
    publication.author_name = "Mira Okafor"
    publication.author_photo = SimpleUploadedFile("mira.png", _png((240, 200)))
    publication.author_photo_alt = "Mira, smiling, in a library"
    publication.save()
    (issue,) = _issues_at(1)

    html = _page(client, issue)

    assert '<span class="author-name">Mira Okafor</span>' in html
    (photo,) = [a for a in _elements(html, "img") if a.get("class") == "author-photo"]
    assert photo["src"].startswith("/media/authors/mira")
    assert (photo["width"], photo["height"]) == ("240", "200")
    assert photo["alt"] == "Mira, smiling, in a library"
    assert _json_ld(html)["author"] == {
        "@type": "Person",
        "name": "Mira Okafor",
        "image": "https://news.example" + photo["src"],
    }


def test_without_an_author_there_is_no_byline_and_the_publication_is_the_author(
    client,
):
    (issue,) = _issues_at(1)
    html = _page(client, issue)
    assert 'class="author"' not in html
    assert _json_ld(html)["author"] == {"@type": "Organization", "name": "Quire"}


def _publication_form(**overrides) -> dict:
    data = {
        "name": "Papers Weekly",
        "description": "",
        "author_name": "Mira Okafor",
        "author_photo_alt": "",
        "sender_name": "",
        "sender_email": "",
        "postal_address": "",
        "welcome_email": "",
        "consent_text": Publication.load().consent_text,
    }
    data.update(overrides)
    return data


def test_the_author_photo_is_uploaded_in_the_publication_admin(admin_client, media):
    url = reverse("admin:newsletter_publication_change", args=[Publication.load().pk])
    photo = SimpleUploadedFile("me.png", _png((300, 300)), content_type="image/png")

    response = admin_client.post(url, _publication_form(author_photo=photo))

    assert response.status_code == 302
    publication = Publication.load()
    assert publication.author_name == "Mira Okafor"
    assert (publication.author_photo_width, publication.author_photo_height) == (
        300,
        300,
    )
    assert list(media.rglob("me*.png"))


def test_a_photo_too_large_to_decode_is_refused_in_the_admin(admin_client, media):
    url = reverse("admin:newsletter_publication_change", args=[Publication.load().pk])
    bomb = SimpleUploadedFile(
        "bomb.png", _png_claiming(30_000, 30_000), content_type="image/png"
    )

    response = admin_client.post(url, _publication_form(author_photo=bomb))

    assert response.status_code == 200
    assert "more than 50 million pixels" in response.content.decode()
    assert not Publication.load().author_photo
    assert not media.exists() or not list(media.rglob("*.png"))


def test_a_photo_whose_file_went_missing_does_not_break_a_save(media):
    publication = Publication.load()
    publication.author_photo = "authors/gone.png"  # no such file
    publication.author_photo_width = None
    publication.save()
    assert publication.author_photo_width is None


# --- Link previews: og:image and JSON-LD ---------------------------------------------
def test_the_cover_is_the_preview_image_with_its_size_and_description(client):
    (issue,) = _issues_at(1)
    issue.cover_image = SimpleUploadedFile("cover.png", _png((1200, 630)))
    issue.cover_alt = "A stack of papers"
    issue.save()
    assert (issue.cover_width, issue.cover_height) == (1200, 630)

    html = _page(client, issue)

    image = _meta(html, "og:image")
    assert image == "https://news.example" + issue.cover_image.url
    assert _meta(html, "og:image:width") == "1200"
    assert _meta(html, "og:image:height") == "630"
    assert _meta(html, "og:image:alt") == "A stack of papers"
    assert _meta(html, "twitter:card") == "summary_large_image"
    (cover,) = [a for a in _elements(html, "img") if a.get("class") == "cover"]
    assert (cover["width"], cover["height"]) == ("1200", "630")
    assert _json_ld(html)["image"] == image


def test_without_a_cover_a_card_is_drawn_once_and_served_for_a_year(client, media):
    (issue,) = _issues_at(1)
    issue.title = "Diffusion goes latent"
    issue.save()

    html = _page(client, issue)
    image = _meta(html, "og:image")
    assert image.startswith("https://news.example/media/cards/")
    assert (_meta(html, "og:image:width"), _meta(html, "og:image:height")) == (
        "1200",
        "630",
    )
    assert _meta(html, "og:image:alt") == "Quire: Diffusion goes latent"
    (card,) = media.rglob("cards/*.png")
    made = card.stat().st_mtime_ns

    response = client.get(urlsplit(image).path)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "public, max-age=31536000"
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as png:
        assert png.size == (1200, 630)

    # Another render (the page cache emptied by a save) finds the card made.
    issue.subtitle = "A new subtitle, the same card"
    issue.save()
    assert _meta(_page(client, issue), "og:image") == image
    assert [p.stat().st_mtime_ns for p in media.rglob("cards/*.png")] == [made]


def test_a_new_title_is_a_new_card(client, media):
    (issue,) = _issues_at(1)
    first = _meta(_page(client, issue), "og:image")
    issue.title = "A better title"
    issue.save()
    assert _meta(_page(client, issue), "og:image") != first
    assert len(list(media.rglob("cards/*.png"))) == 2


def test_the_article_data_describes_the_issue(client):
    (issue,) = _issues_at(1)
    issue.subtitle = "What held up"
    issue.save()

    data = _json_ld(_page(client, issue))

    url = "https://news.example" + issue.get_absolute_url()
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "Article"
    assert data["headline"] == issue.title
    assert data["description"] == "What held up"
    assert data["url"] == data["mainEntityOfPage"] == url
    assert data["datePublished"] == issue.published_at.isoformat()
    assert data["dateModified"] == issue.updated.isoformat()
    assert data["publisher"] == {"@type": "Organization", "name": "Quire"}
    assert data["image"].startswith("https://news.example/media/cards/")
    assert data["isAccessibleForFree"] is True


def test_a_paid_only_issue_says_so_and_describes_only_free_text(client):
    issue = IssueFactory(
        slug="paid", published=True, access=Issue.Access.PAID,
        body="The free teaser.\n\n<!-- paywall -->\n\nThe secret method.",
    )  # fmt: skip
    html = _page(client, issue)
    data = _json_ld(html)
    assert data["isAccessibleForFree"] is False
    assert "secret" not in json.dumps(data)
    assert "The free teaser." in data["description"]


def test_a_hostile_title_cannot_end_the_json_ld_or_the_meta_tags(client):
    (issue,) = _issues_at(1)
    issue.title = HOSTILE
    issue.subtitle = HOSTILE
    issue.save()

    html = _page(client, issue)

    assert "<script>alert(1)" not in html
    (block,) = re.findall(
        r'<script type="application/ld\+json">(.*?)</script>', html, re.S
    )
    assert "<" not in block and ">" not in block and "&" not in block
    data = json.loads(block)
    assert data["headline"] == HOSTILE and data["description"] == HOSTILE
    assert _meta(html, "og:title") == HOSTILE
    assert _meta(html, "og:image:alt") == f"Quire: {HOSTILE}"


def test_json_for_script_escapes_what_would_end_a_script_element():
    text = str(metadata.json_for_script({"a": "</script><!--<script>&\u2029"}))
    assert (
        text
        == '{"a": "\\u003C/script\\u003E\\u003C!--\\u003Cscript\\u003E\\u0026\\u2029"}'
    )
    assert json.loads(text) == {"a": "</script><!--<script>&\u2029"}


# --- Share links ----------------------------------------------------------------------
def _share_hrefs(html: str) -> dict[str, str]:
    return {
        attrs["href"].split(":")[0] + ":" + urlsplit(attrs["href"]).netloc: attrs[
            "href"
        ]
        for attrs in _elements(html, "a")
        if "share-button" in attrs.get("class", "")
    }


def test_share_links_go_to_each_networks_share_page_with_the_issue(client):
    (issue,) = _issues_at(1)
    issue.title = "Convolutions & friends"
    issue.save()
    url = "https://news.example" + issue.get_absolute_url()

    html = _page(client, issue)
    links = _share_hrefs(html)

    mail = parse_qs(urlsplit(links["mailto:"]).query)
    assert mail == {"subject": [issue.title], "body": [f"{issue.title}\n\n{url}"]}
    bluesky = urlsplit(links["https:bsky.app"])
    assert bluesky.path == "/intent/compose"
    assert parse_qs(bluesky.query) == {"text": [f"{issue.title} {url}"]}
    x = urlsplit(links["https:x.com"])
    assert x.path == "/intent/post"
    assert parse_qs(x.query) == {"text": [issue.title], "url": [url]}
    linkedin = urlsplit(links["https:www.linkedin.com"])
    assert parse_qs(linkedin.query) == {"url": [url]}
    (form,) = [f for f in _elements(html, "form") if "share-mastodon" in f["class"]]
    assert form["action"] == reverse("issues:share_mastodon", args=[issue.slug])
    assert form["data-share-mastodon"] == f"{issue.title} {url}"
    (copy,) = [b for b in _elements(html, "button") if "data-share-copy" in b]
    assert copy["data-share-copy"] == url


def test_the_issue_page_loads_nothing_from_other_sites(client):
    (issue,) = _issues_at(1)
    html = _page(client, issue)
    sources = [a.get("src", "") for t in ("script", "img", "iframe")
               for a in _elements(html, t)]  # fmt: skip
    assert _elements(html, "iframe") == []
    assert all(src.startswith("/") for src in sources if src), sources
    scripts = [a.get("src") for a in _elements(html, "script")]
    assert "/static/js/share.js" in scripts
    # The one script without a src is data, not code.
    assert [a for a in _elements(html, "script") if not a.get("src")] == [
        {"type": "application/ld+json"}
    ]


@pytest.mark.parametrize(
    ("typed", "server"),
    [
        ("mastodon.social", "mastodon.social"),
        ("  Fosstodon.ORG/ ", "fosstodon.org"),
        ("https://hachyderm.io/@me", "hachyderm.io"),
        ("@me@sigmoid.social", "sigmoid.social"),
        ("me@infosec.exchange", "infosec.exchange"),
        ("social.example:8443", "social.example:8443"),
    ],
)
def test_the_mastodon_page_links_the_readers_server(client, typed, server):
    (issue,) = _issues_at(1)
    url = reverse("issues:share_mastodon", args=[issue.slug])

    response = client.get(url, {"instance": typed})

    assert response.status_code == 200
    assert response["X-Robots-Tag"] == "noindex"
    html = response.content.decode()
    (link,) = [a for a in _elements(html, "a") if "button" in a.get("class", "")]
    target = urlsplit(link["href"])
    assert (target.scheme, target.netloc, target.path) == ("https", server, "/share")
    assert parse_qs(target.query) == {
        "text": [f"{issue.title} https://news.example{issue.get_absolute_url()}"]
    }


@pytest.mark.parametrize(
    "typed",
    [
        "javascript:alert(1)",
        "not a server",
        "localhost",
        "evil.example\r\nSet-Cookie: x=1",
        "<script>alert(1)</script>",
        "a" * 300 + ".example",
        "1.2",
    ],
)
def test_the_mastodon_page_refuses_what_is_not_a_server_name(client, typed):
    (issue,) = _issues_at(1)
    response = client.get(
        reverse("issues:share_mastodon", args=[issue.slug]), {"instance": typed}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "is not a server name" in html
    assert "Continue to" not in html and "/share?" not in html
    assert "<script>alert" not in html


def test_the_mastodon_page_of_a_draft_is_not_found_by_readers(client):
    draft = IssueFactory(slug="secret-draft", title="Secret plans")
    response = client.get(
        reverse("issues:share_mastodon", args=[draft.slug]),
        {"instance": "mastodon.social"},
    )
    assert response.status_code == 404


# --- Table of contents ----------------------------------------------------------------
LONG_BODY = """Intro.

## Trend of the month

### Why it matters

## Open-source highlights

## Quote of the month
"""


def _contents(html: str) -> list[tuple[str, str]]:
    block = re.search(r'<nav class="contents".*?</nav>', html, re.S)
    if block is None:
        return []
    return re.findall(r'<a href="#([^"]+)">([^<]*)</a>', block[0])


def test_a_long_issue_has_a_table_of_contents_linking_its_headings(client):
    issue = IssueFactory(slug="long", published=True, body=LONG_BODY)
    html = _page(client, issue)
    assert _contents(html) == [
        ("h-trend-of-the-month", "Trend of the month"),
        ("h-why-it-matters", "Why it matters"),
        ("h-open-source-highlights", "Open-source highlights"),
        ("h-quote-of-the-month", "Quote of the month"),
    ]
    for target, _ in _contents(html):
        assert f'id="{target}"' in html
    assert 'class="contents-level-3"' in html


def test_a_short_issue_has_none(client):
    issue = IssueFactory(slug="short", published=True, body="## One\n\n## Two\n")
    assert _contents(_page(client, issue)) == []


def test_headings_below_the_paywall_are_listed_only_for_paying_readers(staff_client):
    issue = IssueFactory(
        slug="split", published=True,
        body="## One\n\n## Two\n\n## Three\n\n<!-- paywall -->\n\n## Secret method\n",
    )  # fmt: skip
    free = [text for _, text in _contents(_page(Client(), issue))]
    assert free == ["One", "Two", "Three"]
    paid = [text for _, text in _contents(_page(staff_client, issue))]
    assert paid == ["One", "Two", "Three", "Secret method"]


def test_a_heading_repeated_across_the_paywall_gets_its_own_id():
    issue = IssueFactory(body="## Notes\n\n<!-- paywall -->\n\n## Notes\n")
    assert [h["id"] for h in issue.headings] == ["h-notes", "h-notes-1"]
    assert 'id="h-notes"' in issue.free_html and 'id="h-notes-1"' in issue.paid_html


def test_hostile_heading_text_gives_a_safe_id_and_an_escaped_entry(client):
    body = (
        "## location\n\n## cookie\n\n"
        '## <img src=x onerror=alert(1)> "Quotes" & </nav><script>x()</script>\n'
    )
    issue = IssueFactory(slug="hostile-headings", published=True, body=body)
    html = _page(client, issue)
    entries = _contents(html)
    ids = [target for target, _ in entries]
    assert ids[:2] == ["h-location", "h-cookie"]
    assert all(re.fullmatch(r"h-[\w-]+", target) for target in ids)
    assert "onerror" not in html and "<script>x()" not in html
    assert "&quot;Quotes&quot; &amp;" in entries[2][1]
    # No element of the body is named like a property of window or document.
    assert 'id="location"' not in html and 'id="cookie"' not in html


def test_ids_an_author_writes_in_raw_html_get_the_prefix_too():
    issue = IssueFactory(
        body='<h2 id="cookie">Raw</h2>\n\n<a id="location">x</a>\n\n'
        '<h3 id="two words">y</h3>\n\ntext[^1]\n\n[^1]: a note\n'
    )
    html = issue.body_html
    assert '<h2 id="h-cookie">' in html
    assert '<a id="h-location"' in html
    assert 'id="h-two-words"' in html
    # The footnotes' own ids are kept, so their links still work.
    assert 'id="fn1"' in html and 'id="fnref1"' in html


def test_the_contents_are_on_the_web_page_not_in_the_email():
    issue = IssueFactory(slug="emailed", published=True, body=LONG_BODY)
    email = render_segment(issue=issue, segment="free")
    assert 'id="h-trend-of-the-month"' in issue.body_html
    assert "In this issue" not in email.html and 'class="contents"' not in email.html
    assert "Trend of the month" in email.html


# --- Old slugs ------------------------------------------------------------------------
def test_a_published_issues_old_address_redirects_to_its_new_one(client):
    (issue,) = _issues_at(1)
    old = issue.get_absolute_url()
    issue.slug = "a-better-slug"
    issue.save()
    issue.slug = "the-best-slug"
    issue.save()

    for url in (old, "/issues/a-better-slug/"):
        response = client.get(url)
        assert response.status_code == 301
        assert response["Location"] == "/issues/the-best-slug/"
    assert client.get("/issues/the-best-slug/").status_code == 200


def test_taking_an_old_slug_back_stops_its_redirect(client):
    (issue,) = _issues_at(1)
    first = issue.slug
    issue.slug = "renamed"
    issue.save()
    issue.slug = first
    issue.save()
    assert client.get(f"/issues/{first}/").status_code == 200
    assert client.get("/issues/renamed/").status_code == 301
    assert list(IssueSlug.objects.values_list("slug", flat=True)) == ["renamed"]


def test_a_draft_renamed_keeps_no_old_slug(client):
    draft = IssueFactory(slug="working-title")
    draft.slug = "final-title"
    draft.save()
    assert not IssueSlug.objects.exists()


def test_an_old_slug_of_an_issue_readers_cannot_see_does_not_redirect(client):
    (issue,) = _issues_at(1)
    issue.slug = "moved"
    issue.save()
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.UNPUBLISHED)
    assert client.get("/issues/ago-1/").status_code == 404


def test_a_new_issue_may_not_take_another_issues_old_slug_in_the_form():
    (issue,) = _issues_at(1)
    issue.slug = "moved"
    issue.save()

    newcomer = IssueFactory.build(title="Something else", slug="ago-1")
    with pytest.raises(ValidationError) as refused:
        newcomer.full_clean()
    assert "still lead there" in str(refused.value.message_dict["slug"])


def test_a_slug_made_from_a_title_avoids_old_slugs():
    (issue,) = _issues_at(1)
    issue.title = "Weekly notes"
    issue.slug = "weekly-notes"
    issue.save()
    issue.slug = "weekly-notes-renamed"
    issue.save()

    newcomer = IssueFactory(title="Weekly notes", slug="")
    assert newcomer.slug == "weekly-notes-2"


def test_saved_past_the_form_the_newest_use_of_a_slug_wins(client):
    (issue,) = _issues_at(1)
    issue.slug = "moved"
    issue.save()
    newcomer = IssueFactory(slug="ago-1", title="The new one", published=True)

    assert not IssueSlug.objects.filter(slug="ago-1").exists()
    assert "The new one" in _page(client, newcomer)


# --- Issue cards: reading time and papers ---------------------------------------------
def test_cards_show_reading_time_and_how_many_papers_the_issue_cites(client):
    papers = [PaperFactory() for _ in range(3)]
    body = (
        " ".join(["word"] * 700)
        + "\n\n"
        + "\n\n".join(f"[[arxiv:{p.arxiv_id}]]" for p in papers)
    )
    issue = IssueFactory(slug="cited", published=True, body=body)
    issue.refresh_from_db()
    assert issue.paper_count == 3
    assert issue.reading_minutes == 3  # 700-odd words at ~230 a minute
    IssueFactory(slug="newest", published=True)  # so "cited" is a card on home

    for url in ("/", reverse("issues:archive")):
        text = client.get(url).content.decode()
        assert "3 min read · 3 papers" in text, url


def test_a_hand_added_citation_counts_too(client):
    issue = IssueFactory(slug="hand", published=True)
    CitationFactory(issue=issue)
    record_citations(issue=issue)
    issue.refresh_from_db()
    assert issue.paper_count == 1


def test_the_issue_admin_lists_the_old_addresses(admin_client):
    (issue,) = _issues_at(1)
    issue.slug = "moved"
    issue.save()
    text = admin_client.get(
        reverse("admin:issues_issue_change", args=[issue.pk])
    ).content.decode()
    assert "/issues/ago-1/ (each redirects here" in text


def test_the_issue_admin_refuses_another_issues_old_slug(admin_client):
    (issue,) = _issues_at(1)
    issue.slug = "moved"
    issue.save()
    other = IssueFactory(slug="other", title="Other")

    response = admin_client.post(
        reverse("admin:issues_issue_change", args=[other.pk]),
        issue_admin_form(title="Other", slug="ago-1"),
    )

    assert response.status_code == 200
    assert "its old links still lead there" in response.content.decode()
    other.refresh_from_db()
    assert other.slug == "other"


def test_deleting_a_paper_cited_by_hand_lowers_the_count():
    issue = IssueFactory(slug="hand-cited", published=True)
    kept, deleted = CitationFactory(issue=issue), CitationFactory(issue=issue)
    record_citations(issue=issue)
    issue.refresh_from_db()
    assert issue.paper_count == 2

    delete_papers(papers=Paper.objects.filter(pk=deleted.paper_id))

    issue.refresh_from_db()
    assert issue.paper_count == 1 and issue.citations.get() == kept


def test_a_paid_only_issue_without_a_break_lists_no_headings_to_free_readers(
    staff_client,
):
    issue = IssueFactory(
        slug="all-paid", published=True, access=Issue.Access.PAID,
        body="## Secret one\n\n## Secret two\n\n## Secret three\n",
    )  # fmt: skip
    html = _page(Client(), issue)
    assert _contents(html) == [] and "Secret" not in html
    assert len(_contents(_page(staff_client, issue))) == 3
