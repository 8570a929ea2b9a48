"""The issue email as a phone shows it: 412 CSS pixels wide, never wider."""

import pytest

from issues.sending.emails import render_segment
from issues.sending.models import Delivery
from tests.factories.issues import IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db

PHONE = {"width": 412, "height": 915}
LONG_LINE = "x = [" + ", ".join(f"'{n:03d}'" for n in range(60)) + "]"
LONG_WORD = "https://example.org/" + "a" * 150

BODY = f"""## A heading with a permalink on the web

```python
{LONG_LINE}
```

    {LONG_LINE}

Prose with an unbreakable address: {LONG_WORD} and `{LONG_LINE[:120]}`.

| column | another column |
|---|---|
| {LONG_WORD} | short |

[[paper:convnext]]

<!-- paywall -->

## Paid part

```
{LONG_LINE}
```
"""


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    yield page
    context.close()


@pytest.mark.parametrize("segment", Delivery.Segment.values)
def test_issue_email_with_a_300_character_code_line_fits_a_phone(
    phone, settings, segment
):
    # Nothing answers here, so images fail at once instead of waiting on a network.
    settings.SITE_URL = "http://127.0.0.1:9"
    assert len(LONG_LINE) >= 300
    PaperFactory(slug="convnext", title="A ConvNet for the 2020s " * 4)
    issue = IssueFactory(title="A long code line", body=BODY)
    email = render_segment(issue=issue, segment=segment)

    phone.set_content(email.html)

    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert phone.evaluate("document.body.scrollWidth") <= PHONE["width"]
    for box in phone.locator("pre").all():
        right = box.evaluate("el => el.getBoundingClientRect().right")
        assert right <= PHONE["width"]
    # Wrapped, not cut: every character of the code is still there.
    assert LONG_LINE in phone.locator("pre").first.text_content()
    assert phone.locator(".header-anchor").count() == 0
    assert phone.locator("h2").first.text_content().strip() == (
        "A heading with a permalink on the web"
    )


def test_the_tracked_email_adds_no_accessibility_problem_and_still_fits(
    phone, settings
):
    from issues.sending.emails.tracking import PH_TRACK
    from tests.browser.test_accessibility import axe_violations

    settings.SITE_URL = "http://127.0.0.1:9"
    PaperFactory(slug="convnext", title="A ConvNet for the 2020s")
    issue = IssueFactory(title="A tracked issue", body=BODY)
    email = render_segment(issue=issue, segment="free", send_id=1)
    assert PH_TRACK in email.tracked_html

    phone.set_content(email.html)
    plain = axe_violations(phone)
    phone.set_content(email.tracked_html)
    tracked = axe_violations(phone)

    # The pixel is decorative (empty alt) and the hidden link is out of reach of
    # screen readers and the keyboard: axe finds nothing the plain email lacks.
    assert tracked == plain
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    hidden = phone.locator('div[aria-hidden="true"] a')
    assert hidden.count() == 1 and not hidden.is_visible()
    assert hidden.get_attribute("tabindex") == "-1"


def test_a_figure_and_its_caption_fit_a_phone_and_notes_stay_endnotes(
    phone, settings, live_server
):
    from tests.browser.test_accessibility import axe_violations

    # The image is served, so the phone lays it out at its real size.
    settings.SITE_URL = live_server.url
    issue = IssueFactory(
        title="A figure",
        body="A claim[^1].\n\n"
        '![A bar chart of accuracy](/static/favicon.svg "Accuracy by model size, '
        'measured on the held-out set for each of the six models")\n\n'
        "[^1]: The note, once.\n",
    )
    email = render_segment(issue=issue, segment="free")
    phone.set_content(email.html)
    phone.wait_for_load_state("load")

    image = phone.locator("figure#figure-1 img").bounding_box()
    caption = phone.locator("figure#figure-1 figcaption")
    box = caption.bounding_box()
    assert image is not None and box is not None
    assert image["width"] > 100  # it loaded, and is shown
    assert image["x"] + image["width"] <= PHONE["width"]
    assert box["y"] >= image["y"] + image["height"]
    assert box["x"] + box["width"] <= PHONE["width"]
    assert caption.inner_text().startswith("Figure 1. Accuracy by model size")
    assert "Helvetica" in caption.evaluate("el => getComputedStyle(el).fontFamily")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # No margin for sidenotes in a mail program: the endnote is there, once.
    assert phone.locator(".sidenote").count() == 0
    assert phone.locator("li#fn1").is_visible()
    assert phone.get_by_text("The note, once.").count() == 1
    # The figure and the notes add no accessibility problem to the email's own.
    found = {v.split(" ")[0] for v in axe_violations(phone)}
    plain = IssueFactory(title="A figure", body="A claim.")
    phone.set_content(render_segment(issue=plain, segment="free").html)
    assert found == {v.split(" ")[0] for v in axe_violations(phone)}
