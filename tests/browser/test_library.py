"""In Chromium: citing an issue, and a subscriber saving a paper to their library."""

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from pybtex.database import parse_string

from issues.models import SavedPaper
from newsletter.models import Publication
from subscribers.sessions import SESSION_KEY
from tests.factories.issues import IssueFactory, PaperFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def issue(db):
    publication = Publication.load()
    publication.name = "The Gradient Notes"
    publication.author_name = "Jane Doe"
    publication.save()
    PaperFactory(slug="convnext", title="A ConvNet for the 2020s",
                 authors=["Zhuang Liu", "Hanzi Mao"], year=2022,
                 arxiv_id="2201.03545")  # fmt: skip
    return IssueFactory(
        slug="vision", title="Vision, revisited", published=True,
        published_at=datetime(2024, 3, 5, 9, tzinfo=UTC), doi="10.59350/abcde-12345",
        body="We read [[paper:convnext]] again.",
    )  # fmt: skip


def signed_in_context(browser, live_server, subscriber):
    session = SessionStore()
    session[SESSION_KEY] = subscriber.pk
    session.save()
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": session.session_key}
    context.add_cookies([{**cookie, "url": live_server.url}])
    return context


def test_a_subscriber_saves_a_paper_and_downloads_their_papers_as_bibtex(
    browser, live_server, issue, tmp_path
):
    ada = SubscriberFactory(email="ada@example.org")
    context = signed_in_context(browser, live_server, ada)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/issues/vision/")
        page.get_by_role(
            "button", name="Save A ConvNet for the 2020s to your papers"
        ).click()

        page.wait_for_url("**/issues/vision/")
        assert page.locator(".messages").inner_text() == (
            "Saved “A ConvNet for the 2020s” to your papers."
        )
        assert page.locator(".save-paper-state").inner_text() == "Saved to your papers"
        assert SavedPaper.objects.filter(subscriber=ada).count() == 1

        page.goto("/account/")
        papers = page.locator(".library-list")
        assert papers.get_by_role("link", name="A ConvNet for the 2020s").is_visible()
        with page.expect_download() as download:
            page.get_by_role("link", name="Export your papers as BibTeX").click()
        path = tmp_path / "papers.bib"
        download.value.save_as(path)
        entries = parse_string(path.read_text(), "bibtex").entries
        assert [e.fields["title"] for e in entries.values()] == [
            "A ConvNet for the 2020s"
        ]

        page.get_by_role(
            "button", name="Remove A ConvNet for the 2020s from your papers"
        ).click()
        page.wait_for_url("**/account/")
        assert page.locator(".library-empty").is_visible()
        assert not SavedPaper.objects.exists()
    finally:
        context.close()


def test_an_anonymous_reader_is_asked_to_sign_in_to_save(browser, live_server, issue):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    try:
        page.goto("/issues/vision/")
        page.get_by_role(
            "link", name="Sign in to save A ConvNet for the 2020s to your papers"
        ).click()
        page.wait_for_url("**/account/login/")
    finally:
        context.close()


def test_the_cite_section_opens_and_shows_the_reference(browser, live_server, issue):
    context = browser.new_context(base_url=live_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto("/issues/vision/")
        reference = page.locator(".cite-reference")
        assert not reference.is_visible()

        page.get_by_text("Cite this issue").click()

        assert reference.is_visible()
        assert reference.inner_text() == (
            "Doe, J. (2024, March 5). Vision, revisited. The Gradient Notes. "
            "https://doi.org/10.59350/abcde-12345"
        )
        assert page.locator(".cite-reference i").inner_text() == "The Gradient Notes"
        page.get_by_role("button", name="Copy reference").click()
        page.wait_for_function(
            "() => document.querySelector('.cite-copy').textContent === 'Copied'"
        )
        assert page.evaluate("navigator.clipboard.readText()") == reference.inner_text()
        assert page.get_by_role("link", name="RIS").get_attribute("href") == (
            "/issues/vision/cite.ris"
        )
        assert errors == []  # no script or style refused by the CSP
    finally:
        context.close()
