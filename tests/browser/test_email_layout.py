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
