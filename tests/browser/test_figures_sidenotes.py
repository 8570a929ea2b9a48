"""Figures and footnotes on an issue page, in a real Chromium: each note beside its
reference on a wide screen, endnotes on a phone, and axe finds nothing either way."""

import pytest

from tests.browser.test_accessibility import axe_violations
from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db(transaction=True)

PROSE = "A paragraph of prose that runs on for a while. " * 12
BODY = f"""## Results

{PROSE}The first claim needs a source[^src] and more words follow it.

![A bar chart: accuracy rises with size](/static/favicon.svg "Accuracy by model size")

{PROSE}A second claim[^aside] ends here.

{PROSE}

[^src]: Sidenote one, with [a link](https://example.org/paper).
[^aside]: Sidenote two says something else.
"""
WIDE = {"width": 1400, "height": 900}
PHONE = {"width": 400, "height": 800}


@pytest.fixture
def issue(live_server, settings):
    settings.SITE_URL = live_server.url
    return IssueFactory(
        title="Notes beside the text", slug="notes", published=True, body=BODY
    )


def open_page(browser, live_server, viewport, color_scheme="light"):
    # bypass_csp: axe-core is injected as an inline script, which the policy forbids.
    context = browser.new_context(
        base_url=live_server.url,
        viewport=viewport,
        color_scheme=color_scheme,
        bypass_csp=True,
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/issues/notes/")
    return context, page


def shown(page, text: str) -> int:
    """Return how many elements holding the text are displayed (so read aloud)."""
    return page.locator(f"text={text}").evaluate_all(
        "els => els.filter(e => e.checkVisibility()).length"
    )


def duplicate_ids(page) -> list[str]:
    return page.evaluate(
        """() => { const seen = {}; for (const e of document.querySelectorAll('[id]'))
              seen[e.id] = (seen[e.id] || 0) + 1;
            return Object.keys(seen).filter(k => seen[k] > 1); }"""
    )


def test_on_a_wide_screen_each_note_sits_beside_its_reference(
    browser, live_server, issue
):
    context, page = open_page(browser, live_server, WIDE)
    try:
        note = page.locator(".sidenote").first
        assert note.is_visible()
        assert page.locator("section.footnotes").is_hidden()
        box = note.bounding_box()
        text = page.locator(".prose p", has=page.locator("#fnref1")).bounding_box()
        ref = page.locator("#fnref1").bounding_box()
        assert box is not None and text is not None and ref is not None
        # In the margin to the right of the text, level with its reference.
        assert box["x"] >= text["x"] + text["width"]
        assert box["x"] + box["width"] <= WIDE["width"]
        assert abs(box["y"] - ref["y"]) < 40
        assert page.locator(".sidenote").nth(1).is_visible()
        # Each note is displayed, and so read, once.
        assert shown(page, "Sidenote one") == 1
        assert shown(page, "Sidenote two says") == 1
        # The figure, numbered, its caption under the image.
        figure = page.locator("figure#figure-1")
        assert figure.locator("figcaption").inner_text() == (
            "Figure 1. Accuracy by model size"
        )
        image = figure.locator("img").bounding_box()
        caption = figure.locator("figcaption").bounding_box()
        assert image is not None and caption is not None
        assert caption["y"] >= image["y"] + image["height"]
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]
        assert duplicate_ids(page) == []
        assert axe_violations(page) == []
    finally:
        context.close()


def test_on_a_phone_the_notes_are_endnotes(browser, live_server, issue):
    context, page = open_page(browser, live_server, PHONE)
    try:
        assert page.locator(".sidenote").first.is_hidden()
        endnotes = page.locator("section.footnotes")
        assert endnotes.is_visible()
        assert endnotes.locator("li").count() == 2
        assert shown(page, "Sidenote one") == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # The reference still leads to its endnote.
        page.locator("#fnref1").click()
        assert page.evaluate("location.hash") == "#fn1"
        assert axe_violations(page) == []
    finally:
        context.close()


def test_the_dark_theme_keeps_notes_and_captions_readable(browser, live_server, issue):
    context, page = open_page(browser, live_server, WIDE, color_scheme="dark")
    try:
        assert page.locator(".sidenote").first.is_visible()
        assert axe_violations(page) == []
    finally:
        context.close()
