"""Every reader page passes axe-core with no violation, in the light and dark themes.

The pages are tests/browser/reader_pages.py's (the ones `make lighthouse` scores),
and a tag's second page; the issue pages are also checked for what each holds.

axe.min.js comes with the axe-playwright-python package (the dev extras) and is
injected into the page under test; nothing of it is served by Quire.
"""

from pathlib import Path

import pytest

from issues.demo import load_demo
from issues.models import Tag
from issues.views import ISSUES_PER_PAGE
from subscribers.models import Subscriber
from subscribers.sessions import SESSION_KEY
from tests.browser.reader_pages import READER_PAGES
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Each demo issue, and what it holds that the others do not.
ISSUES = {
    "top-10-papers-of-2022": ".citation .rank",  # the ranked list
    "convolutions-strike-back": "pre.highlight",  # highlighted code
    "scaling-laws-revisited": ".paywall-box",  # the paywall box
}
THEMES = {
    # What the system asks for, and what the reader chose with the toggle (if any).
    "light": ("light", None),
    "dark-system": ("dark", None),
    "dark-chosen": ("light", "dark"),
}


def axe_violations(page) -> list[str]:
    import axe_playwright_python

    script = Path(axe_playwright_python.__file__).with_name("axe.min.js")
    page.add_script_tag(path=str(script))
    return page.evaluate(
        """async () => (await axe.run(document)).violations.map(v =>
            `${v.id} (${v.impact}): ${v.help}\\n` + v.nodes.map(n =>
                `  ${n.target.join(" ")}: ${n.failureSummary}`).join("\\n"))"""
    )


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("slug", ISSUES)
def test_the_issue_page_has_no_accessibility_violation(
    browser, live_server, slug, theme
):
    load_demo()
    system, chosen = THEMES[theme]
    # axe-core is injected as an inline script, which the site's policy forbids.
    context = browser.new_context(
        base_url=live_server.url, color_scheme=system, bypass_csp=True
    )
    if chosen:
        context.add_init_script(f"localStorage.setItem('quire-theme', '{chosen}')")
    page = context.new_page()
    try:
        page.goto(f"/issues/{slug}/")
        # The theme in force: the page's background is dark or light.
        dark = page.evaluate(
            """() => getComputedStyle(document.body).backgroundColor
                .match(/\\d+/g).slice(0, 3).reduce((sum, c) => sum + +c, 0) < 200"""
        )
        assert dark is ((chosen or system) == "dark")
        assert page.locator(ISSUES[slug]).count() > 0

        assert axe_violations(page) == []
    finally:
        context.close()


def signed_in_cookie(live_server) -> dict:
    """Return a session cookie of a signed-in subscriber, for the account page."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    # The same reader on each signed-in page (an address is one subscriber).
    reader = Subscriber.objects.filter(email="reader@example.org").first()
    session[SESSION_KEY] = (reader or SubscriberFactory(email="reader@example.org")).pk
    session.save()
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": session.session_key,
        "url": live_server.url,
    }


@pytest.mark.parametrize("theme", THEMES)
def test_every_reader_page_has_no_accessibility_violation(browser, live_server, theme):
    load_demo()
    vision = Tag.objects.get(slug="vision")
    # Enough issues on one tag for a second page, and its pagination links.
    for n in range(ISSUES_PER_PAGE):
        IssueFactory(slug=f"vision-{n}", published=True, tags=[vision])
    pages = {**READER_PAGES, "tag-page-2": ("/tags/vision/?page=2", False)}
    system, chosen = THEMES[theme]
    found = {}
    for name, (path, signed_in) in pages.items():
        context = browser.new_context(
            base_url=live_server.url, color_scheme=system, bypass_csp=True
        )
        if chosen:
            context.add_init_script(f"localStorage.setItem('quire-theme', '{chosen}')")
        if signed_in:
            context.add_cookies([signed_in_cookie(live_server)])
        page = context.new_page()
        try:
            response = page.goto(path)
            assert response.status == 200, path
            if signed_in:
                assert page.url.endswith(path), f"{path} sent the reader to {page.url}"
            if violations := axe_violations(page):
                found[f"{name} {path}"] = violations
        finally:
            context.close()

    assert found == {}, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in found.items())
