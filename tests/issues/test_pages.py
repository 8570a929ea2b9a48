import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from issues.models import Citation, Issue
from tests.factories.issues import IssueFactory, PaperFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def library():
    """Published, draft, scheduled and paid issues with papers and tags."""
    vision = TagFactory(name="Vision", slug="vision")
    papers = [PaperFactory(arxiv_id=f"2201.{n:05d}", year=2022) for n in range(12)]
    for paper in papers:
        paper.tags.add(vision)
    body = "\n\n".join(f"[[arxiv:{p.arxiv_id}]]" for p in papers)
    published = IssueFactory(
        title="Top papers", slug="top-papers", body=body, published=True,
        tags=[vision, TagFactory(name="LLM", slug="llm")],
    )  # fmt: skip
    Citation.objects.filter(issue=published).update(rank=None)
    for rank, citation in enumerate(published.citations.all()[:10], start=1):
        citation.rank = rank
        citation.save()
    for n in range(5):
        IssueFactory(
            slug=f"older-{n}", published=True, tags=[vision],
            published_at=timezone.now() - timedelta(days=30 * (n + 1)),
        )  # fmt: skip
    draft = IssueFactory(title="Secret draft", slug="secret-draft",
                         body="draft words [[arxiv:2301.99999]]")  # fmt: skip
    scheduled = IssueFactory(title="Scheduled one", slug="scheduled-one",
                             scheduled=True, body="scheduled words")  # fmt: skip
    future = IssueFactory(
        title="Future one", slug="future-one", status=Issue.Status.PUBLISHED,
        published_at=timezone.now() + timedelta(days=2), body="future words",
    )  # fmt: skip
    return {
        "papers": papers, "published": published, "draft": draft,
        "scheduled": scheduled, "future": future, "tag": vision,
    }  # fmt: skip


HIDDEN = ("secret-draft", "scheduled-one", "future-one")
HIDDEN_TITLES = ("Secret draft", "Scheduled one", "Future one")


def _pages(library):
    paper = library["papers"][0]
    return [
        "/",
        reverse("issues:archive"),
        reverse("issues:issue", args=["top-papers"]),
        reverse("issues:issue_bibtex", args=["top-papers"]),
        reverse("issues:papers"),
        reverse("issues:papers") + "?year=2022&tag=vision",
        reverse("issues:paper", args=[paper.slug]),
        reverse("issues:paper_bibtex", args=[paper.slug]),
        reverse("issues:top_papers", args=[2022]),
        reverse("issues:tag", args=["vision"]),
        reverse("issues:search") + "?q=words",
        reverse("issues:search") + "?q=Secret",
        reverse("issues:feed_rss"),
        reverse("issues:feed_atom"),
        "/sitemap.xml",
        "/robots.txt",
    ]


def test_every_reader_page_answers(client, library):
    for url in _pages(library):
        response = client.get(url)
        assert response.status_code == 200, url


def test_drafts_scheduled_and_future_issues_never_leak_to_readers(client, library):
    for slug in HIDDEN:
        assert client.get(reverse("issues:issue", args=[slug])).status_code == 404
        assert (
            client.get(reverse("issues:issue_bibtex", args=[slug])).status_code == 404
        )
    for url in _pages(library):
        text = client.get(url).content.decode()
        for slug, title in zip(HIDDEN, HIDDEN_TITLES, strict=True):
            assert slug not in text, url
            assert title not in text, url


def test_staff_can_preview_drafts_with_a_banner(staff_client, library):
    response = staff_client.get(reverse("issues:issue", args=["secret-draft"]))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Preview: this issue is <strong>draft</strong>" in text
    assert '<meta name="robots" content="noindex">' in text
    # The author sees the unknown reference flagged above the page, which shows it
    # as readers would get it: plain text.
    assert "1 reference names no paper yet ([[arxiv:2301.99999]])" in text
    assert "draft words arXiv:2301.99999" in text
    assert "paper-ref" not in text.split('class="prose"')[1].split("</div>")[0]
    archive = staff_client.get(reverse("issues:archive")).content.decode()
    assert "Secret draft" in archive


def test_feeds_and_sitemap_hide_drafts_even_from_staff(staff_client, library):
    for url in (
        reverse("issues:feed_rss"),
        reverse("issues:feed_atom"),
        "/sitemap.xml",
    ):
        text = staff_client.get(url).content.decode()
        for slug in HIDDEN:
            assert slug not in text, url


def test_issue_page_shows_body_tags_reading_time_and_cited_papers(client, library):
    issue = library["published"]
    response = client.get(issue.get_absolute_url())
    text = response.content.decode()
    assert '<h1 id="issue-title">Top papers</h1>' in text
    assert "min read" in text
    assert 'href="/tags/vision/"' in text
    assert text.count('class="citation"') == 12
    assert 'href="/issues/top-papers/bibtex"' in text
    assert 'class="subscribe-box"' in text


def test_issue_page_has_canonical_opengraph_and_twitter_meta(client, library, settings):
    settings.SITE_URL = "https://news.example"
    issue = library["published"]
    issue.subtitle = "The year's best"
    issue.save()
    text = client.get(issue.get_absolute_url()).content.decode()
    assert (
        '<link rel="canonical" href="https://news.example/issues/top-papers/">' in text
    )
    assert '<meta property="og:title" content="Top papers">' in text
    assert '<meta property="og:description" content="The year&#x27;s best">' in text
    assert '<meta property="og:type" content="article">' in text
    # Without a cover, the issue's generated card is its preview image.
    assert '<meta name="twitter:card" content="summary_large_image">' in text


def test_issue_page_answers_304_to_a_matching_etag_or_date(
    client, staff_client, library
):
    url = library["published"].get_absolute_url()
    from django.test import Client

    # Anonymous readers: the cached page's ETag (a date could not tell two
    # versions made within one second apart).
    first = Client().get(url)
    assert first["ETag"]
    again = Client().get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    # Staff (and members): the issue's own ETag and date.
    first = staff_client.get(url)
    assert first["ETag"] and first["Last-Modified"]
    since = staff_client.get(url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert since.status_code == 304


def test_editing_an_issue_changes_its_etag(client, library):
    issue = library["published"]
    etag = client.get(issue.get_absolute_url())["ETag"]
    issue.title = "Top papers, revised"
    issue.save()
    response = client.get(issue.get_absolute_url(), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert "Top papers, revised" in response.content.decode()


def test_staff_and_readers_get_different_etags(client, staff_client, library):
    from django.test import Client

    url = library["published"].get_absolute_url()
    reader_etag = Client().get(url)["ETag"]
    assert staff_client.get(url, HTTP_IF_NONE_MATCH=reader_etag).status_code == 200


@pytest.fixture
def paywalled(db):
    paper_free = PaperFactory(arxiv_id="2201.03545", title="Free paper")
    paper_paid = PaperFactory(arxiv_id="2204.01697", title="Paid paper")
    free_issue = IssueFactory(
        slug="with-break", published=True, title="With a break",
        body="Open words [[arxiv:2201.03545]]\n\n<!-- paywall -->\n\n"
        "Hidden supporter words [[arxiv:2204.01697]]",
    )  # fmt: skip
    paid_only = IssueFactory(
        slug="paid-only", published=True, paid_only=True, title="Paid only",
        subtitle="For supporters", body="Entirely secret words [[arxiv:2201.03545]]",
    )  # fmt: skip
    return {"free": free_issue, "paid": paid_only, "papers": (paper_free, paper_paid)}


def test_readers_see_the_free_part_and_a_supporters_box(client, paywalled):
    text = client.get(paywalled["free"].get_absolute_url()).content.decode()
    assert "Open words" in text
    assert "Hidden supporter words" not in text
    assert "The rest of this issue is for paying supporters" in text
    assert "Free paper" in text and "Paid paper" not in text


def test_staff_see_the_paid_part(staff_client, paywalled):
    text = staff_client.get(paywalled["free"].get_absolute_url()).content.decode()
    assert "Hidden supporter words" in text and "Paid paper" in text
    assert "paying supporters" not in text


def test_a_paid_only_issue_shows_readers_only_its_title_and_subtitle(client, paywalled):
    text = client.get(paywalled["paid"].get_absolute_url()).content.decode()
    assert "Paid only" in text and "For supporters" in text
    assert "Entirely secret words" not in text
    assert "This issue is for paying supporters" in text
    assert "Free paper" not in text


def test_paid_content_never_reaches_feeds_search_bibtex_or_meta(client, paywalled):
    for url in (
        reverse("issues:feed_rss"),
        reverse("issues:feed_atom"),
        reverse("issues:issue_bibtex", args=["with-break"]),
        reverse("issues:issue_bibtex", args=["paid-only"]),
        paywalled["free"].get_absolute_url(),
        paywalled["paid"].get_absolute_url(),
    ):
        text = client.get(url).content.decode()
        for secret in ("Hidden supporter", "Entirely secret", "Paid paper"):
            assert secret not in text, (url, secret)


def test_search_finds_only_free_words(client, paywalled):
    for q in ("Hidden supporter", "Entirely secret"):
        response = client.get(reverse("issues:search"), {"q": q})
        assert response.context["issues"] == [], q
    found = client.get(reverse("issues:search"), {"q": "Open words"}).context["issues"]
    assert found == [paywalled["free"]]
    assert "Hidden" not in found[0].snippet_html


def test_feed_has_the_free_part_and_a_call_to_support(client, paywalled):
    text = client.get(reverse("issues:feed_rss")).content.decode()
    assert "Open words" in text
    assert "The rest of this issue is for paying supporters" in text
    assert "This issue is for paying supporters" in text


def test_home_shows_latest_issue_recent_issues_and_subscribe_box(client, library):
    text = client.get("/").content.decode()
    assert "Latest issue" in text and "Top papers" in text
    assert 'href="/issues/older-0/"' in text
    assert 'class="subscribe-box"' in text


def test_archive_is_paginated_and_grouped_by_year(client, db):
    for n in range(25):
        IssueFactory(slug=f"a-{n}", published=True,
                     published_at=timezone.now() - timedelta(days=n * 20))  # fmt: skip
    first = client.get(reverse("issues:archive")).content.decode()
    assert first.count('class="issue-item"') == 20
    assert 'rel="next"' in first
    second = client.get(reverse("issues:archive") + "?page=2").content.decode()
    assert second.count('class="issue-item"') == 5
    year = str(timezone.now().year)
    assert f'<h2 id="year-{year}">{year}</h2>' in first


def test_papers_index_filters_by_year_and_tag(client, db):
    tag = TagFactory(slug="diffusion", name="Diffusion")
    old = PaperFactory(title="Old diffusion", year=2020)
    old.tags.add(tag)
    PaperFactory(title="New thing", year=2022)
    text = client.get(reverse("issues:papers") + "?year=2020").content.decode()
    assert "Old diffusion" in text and "New thing" not in text
    text = client.get(reverse("issues:papers") + "?tag=diffusion").content.decode()
    assert "Old diffusion" in text and "New thing" not in text


YEAR_LINK_RE = re.compile(r'<a href="([^"]+)"[^>]*>(\d{4})[^<]*</a>')


def _year_links(client, url: str) -> dict[str, str]:
    page = client.get(url).content.decode()
    row = page[page.index('class="top-links"') :].split("</p>", 1)[0]
    return {year: href for href, year in YEAR_LINK_RE.findall(row)}


def test_papers_year_links_lead_to_top_papers_only_where_a_year_has_them(
    client, library
):
    PaperFactory(title="Unranked one", year=2021)
    # Ranked only below a paywall: free readers have no top list for that year.
    hidden = PaperFactory(title="Ranked behind the paywall", year=2019)
    IssueFactory(
        slug="paid-ranking", published=True,
        body=f"Free.\n\n<!-- paywall -->\n\n[[paper:{hidden.slug}]]",
    )  # fmt: skip
    Citation.objects.filter(paper=hidden).update(rank=1)

    links = _year_links(client, reverse("issues:papers"))

    assert links == {
        "2022": reverse("issues:top_papers", args=[2022]),
        "2021": "?year=2021",
        "2019": "?year=2019",
    }
    for href in links.values():
        response = client.get(href if href.startswith("/") else "/papers/" + href)
        assert response.status_code == 200, href
    unranked = client.get("/papers/?year=2021").content.decode()
    assert "Unranked one" in unranked and library["papers"][0].title not in unranked
    assert client.get(reverse("issues:top_papers", args=[2019])).status_code == 404


def test_other_years_on_a_top_papers_page_all_have_top_papers(client, library):
    PaperFactory(title="Unranked one", year=2021)
    ranked_2020 = PaperFactory(title="Best of 2020", year=2020)
    issue = IssueFactory(
        slug="best-2020", published=True, body=f"[[paper:{ranked_2020.slug}]]"
    )
    Citation.objects.filter(issue=issue).update(rank=1)

    page = client.get(reverse("issues:top_papers", args=[2022])).content.decode()

    assert f'href="{reverse("issues:top_papers", args=[2020])}"' in page
    assert reverse("issues:top_papers", args=[2021]) not in page


def test_paper_page_lists_every_visible_issue_that_discussed_it(client, library):
    paper = library["papers"][0]
    text = client.get(paper.get_absolute_url()).content.decode()
    assert "Top papers" in text
    assert "Secret draft" not in text
    assert f'href="https://arxiv.org/abs/{paper.arxiv_id}"' in text


def test_top_papers_of_a_year_are_listed_by_rank(client, library):
    text = client.get(reverse("issues:top_papers", args=[2022])).content.decode()
    ranks = [text.index(f"#{n}<") for n in range(1, 11)]
    assert ranks == sorted(ranks)
    assert client.get(reverse("issues:top_papers", args=[1999])).status_code == 404


def test_tag_page_lists_issues_and_papers(client, library):
    text = client.get(reverse("issues:tag", args=["vision"])).content.decode()
    assert "Top papers" in text
    assert library["papers"][0].title in text


def test_bibtex_for_a_paper(client, db):
    paper = PaperFactory(
        title="A ConvNet for the 2020s", authors=["Zhuang Liu", "Hanzi Mao"],
        year=2022, arxiv_id="2201.03545", venue="CVPR", slug="convnext",
    )  # fmt: skip
    response = client.get(reverse("issues:paper_bibtex", args=[paper.slug]))
    assert response["Content-Type"].startswith("text/x-bibtex")
    text = response.content.decode()
    assert text.startswith("@inproceedings{liu2022convnet,")
    assert "author = {Zhuang Liu and Hanzi Mao}," in text
    assert "eprint = {2201.03545}," in text
    assert "booktitle = {CVPR}," in text


def test_bibtex_for_an_issue_lists_the_issue_and_its_papers(client, library):
    text = client.get(
        reverse("issues:issue_bibtex", args=["top-papers"])
    ).content.decode()
    assert text.startswith("@misc{")
    assert "title = {Top papers}," in text
    assert text.count("@") == 13


def test_search_pages_may_be_crawled_and_name_the_search_page_as_original(client, db):
    robots = client.get("/robots.txt").content.decode()
    for url in ("/search/", "/search/?q=diffusion"):
        text = client.get(url).content.decode()
        assert 'name="robots"' not in text, url
        assert '<link rel="canonical" href="http://testserver/search/">' in text, url
        assert '<meta name="description" content="Search every issue' in text, url
    assert "Disallow: /search/" not in robots


def test_robots_txt_points_to_the_sitemap(client, db):
    text = client.get("/robots.txt").content.decode()
    assert "Sitemap: http://testserver/sitemap.xml" in text
    assert "Disallow: /admin/" in text


def test_sitemap_lists_published_issues_papers_and_tags(client, library):
    text = client.get("/sitemap.xml").content.decode()
    assert "/issues/top-papers/" in text
    assert f"/papers/{library['papers'][0].slug}/" in text
    assert "/tags/vision/" in text


def test_sitemap_lists_a_tag_only_papers_have(client, library):
    library["papers"][0].tags.add(TagFactory(name="Optics", slug="optics"))
    TagFactory(name="Unused", slug="unused")
    text = client.get("/sitemap.xml").content.decode()
    assert "/tags/optics/" in text
    assert "/tags/unused/" not in text


def test_sitemap_leaves_out_tags_only_on_issues_not_out_yet(client, library):
    library["future"].tags.add(TagFactory(name="Embargoed", slug="embargoed"))
    text = client.get("/sitemap.xml").content.decode()
    assert "/tags/vision/" in text
    assert "/tags/embargoed/" not in text


def test_unknown_pages_are_404(client, db):
    for url in ("/issues/nope/", "/papers/nope/", "/tags/nope/", "/papers/nope/bibtex"):
        assert client.get(url).status_code == 404


def test_staff_can_preview_the_page_as_a_free_reader(staff_client, paywalled):
    url = paywalled["free"].get_absolute_url()
    text = staff_client.get(url + "?as=free").content.decode()
    assert "Open words" in text and "Hidden supporter words" not in text
    assert "The rest of this issue is for paying supporters" in text
    assert "Hidden supporter words" in staff_client.get(url).content.decode()


def test_readers_cannot_gain_access_with_the_preview_switch(client, paywalled):
    url = paywalled["free"].get_absolute_url()
    for query in ("?as=free", "?as=paid", "?as=staff"):
        assert "Hidden supporter words" not in client.get(url + query).content.decode()
