"""A reader on an issue page: copies its link, shares it, jumps through its table
of contents and walks to the previous and next issues, in a real Chromium."""

import io
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from newsletter.models import Publication
from tests.browser.test_accessibility import axe_violations
from tests.browser.test_csp import Watched
from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db(transaction=True)

BODY = "\n\n".join(
    f"## Section {n}\n\n" + "\n\n".join(["A paragraph of prose. " * 40] * 4)
    for n in range(1, 6)
)


@pytest.fixture
def issues(live_server, settings):
    settings.SITE_URL = live_server.url
    now = timezone.now()
    return [
        IssueFactory(
            title=f"Issue {n}",
            slug=f"issue-{n}",
            published=True,
            body=BODY,
            published_at=now - timedelta(days=10 - n),
        )  # fmt: skip
        for n in range(1, 4)
    ]


def test_copy_link_puts_the_issues_address_on_the_clipboard(
    browser, live_server, issues
):
    context = browser.new_context(
        base_url=live_server.url, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    try:
        watched = Watched(page)
        watched.visit("/issues/issue-2/")
        page.get_by_role("button", name="Copy link").click()

        expect(
            page.get_by_role("status").filter(has_text="Link copied.")
        ).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == f"{live_server.url}/issues/issue-2/"
        watched.collect("after copying")
        assert watched.problems == []
    finally:
        context.close()


def test_without_the_clipboard_the_link_is_shown_to_copy(page, live_server, issues):
    page.add_init_script(
        "navigator.clipboard.writeText = () => Promise.reject(new Error('denied'));"
    )
    page.goto("/issues/issue-2/")
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("[data-share-status]")).to_have_text(
        f"Copy this link: {live_server.url}/issues/issue-2/"
    )


def test_an_entry_of_the_contents_moves_to_its_heading(page, issues):
    page.goto("/issues/issue-2/")
    heading = page.get_by_role("heading", name="Section 4")
    expect(heading).not_to_be_in_viewport()

    contents = page.get_by_role("navigation", name="In this issue")
    contents.get_by_role("link", name="Section 4").click()

    expect(page).to_have_url(re.compile(r"/issues/issue-2/#h-section-4$"))
    expect(heading).to_be_in_viewport()


def test_previous_and_next_walk_through_the_issues(page, issues):
    page.goto("/issues/issue-2/")
    nav = page.get_by_role("navigation", name="Previous and next issues")

    nav.get_by_role("link", name=re.compile("Next issue")).click()
    expect(page).to_have_url(re.compile(r"/issues/issue-3/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Issue 3")
    expect(nav.get_by_role("link", name=re.compile("Next issue"))).to_have_count(0)

    nav.get_by_role("link", name=re.compile("Previous issue")).click()
    nav.get_by_role("link", name=re.compile("Previous issue")).click()
    expect(page).to_have_url(re.compile(r"/issues/issue-1/$"))
    expect(nav.get_by_role("link", name=re.compile("Previous issue"))).to_have_count(0)


def test_mastodon_opens_the_readers_server_and_remembers_it(page, live_server, issues):
    shared = []

    def server(route):
        shared.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>shared</p>")

    page.route("https://mastodon.example/**", server)
    page.goto("/issues/issue-2/")
    page.get_by_label("Share on Mastodon, from your server").fill(
        "@me@Mastodon.example"
    )
    page.get_by_role("button", name="Share on Mastodon").click()

    expect(page.get_by_text("shared")).to_be_visible()
    (url,) = shared
    target = urlsplit(url)
    assert (target.netloc, target.path) == ("mastodon.example", "/share")
    assert parse_qs(target.query) == {
        "text": [f"Issue 2 {live_server.url}/issues/issue-2/"]
    }

    page.goto("/issues/issue-3/")
    expect(page.get_by_label("Share on Mastodon, from your server")).to_have_value(
        "mastodon.example"
    )


def test_without_scripts_mastodon_asks_for_the_server_on_a_page_of_its_own(
    browser, live_server, issues
):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto("/issues/issue-2/")
        expect(page.get_by_role("button", name="Copy link")).to_be_hidden()
        page.get_by_label("Share on Mastodon, from your server").fill("not a server")
        page.get_by_role("button", name="Share on Mastodon").click()
        expect(page.get_by_text("is not a server name")).to_be_visible()

        page.get_by_label("Your Mastodon server").fill("fosstodon.org")
        page.get_by_role("button", name="Continue").click()
        link = page.get_by_role("link", name="Continue to fosstodon.org")
        href = link.get_attribute("href")
        assert href.startswith("https://fosstodon.org/share?text=Issue%202%20")
    finally:
        context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize(
    "path",
    [
        "/issues/issue-2/",
        "/issues/issue-2/share/mastodon/?instance=mastodon.social",
        "/issues/issue-2/share/mastodon/?instance=not+a+server",
    ],
)
def test_the_new_parts_have_no_accessibility_violation(
    browser, live_server, issues, settings, tmp_path, path, theme
):
    settings.MEDIA_ROOT = tmp_path / "media"
    publication = Publication.load()
    publication.author_name = "Mira Okafor"
    publication.author_photo = SimpleUploadedFile("mira.png", _png((200, 200)))
    publication.save()
    issue = issues[1]
    issue.cover_image = SimpleUploadedFile("cover.png", _png((1200, 630)))
    issue.cover_alt = "A stack of papers"
    issue.save()
    # axe-core is injected as an inline script, which the site's policy forbids.
    context = browser.new_context(
        base_url=live_server.url, color_scheme=theme, bypass_csp=True
    )
    page = context.new_page()
    try:
        page.goto(path)
        if path == "/issues/issue-2/":
            expect(page.locator(".author-photo")).to_be_visible()
            expect(page.locator(".contents")).to_be_visible()
            expect(page.locator(".issue-nav")).to_be_visible()
            expect(page.get_by_role("button", name="Copy link")).to_be_visible()
        assert axe_violations(page) == []
    finally:
        context.close()


def _png(size) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return out.getvalue()
