"""The author writes an issue in the admin; a reader finds it on the web."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.factories.issues import PaperFactory

pytestmark = pytest.mark.django_db(transaction=True)

BODY = """\
## What ConvNeXt changed

The whole block, in PyTorch:

```python
def forward(self, x):
    return x + self.pwconv2(self.act(self.pwconv1(x)))
```

[[arxiv:2201.03545]]
"""


def test_author_writes_and_publishes_an_issue_that_readers_find(
    page, browser, live_server
):
    get_user_model().objects.create_superuser("author", "a@example.org", "s3cret-pass!")
    PaperFactory(
        title="A ConvNet for the 2020s", slug="convnext", arxiv_id="2201.03545",
        authors=["Zhuang Liu", "Hanzi Mao"], venue="CVPR", year=2022,
    )  # fmt: skip

    page.goto("/admin/login/?next=/admin/issues/issue/add/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill("s3cret-pass!")
    page.get_by_role("button", name="Log in").click()

    # The theme's labels: no colon, an asterisk on a required field.
    page.get_by_label("Title*", exact=True).press_sequentially(
        "Convolutions strike back"
    )
    expect(page.locator("#id_slug")).to_have_value("convolutions-strike-back")
    page.locator("#id_body").fill(BODY)

    # The live preview renders the code block and the paper card as the author types.
    preview = page.locator(".markdownx-preview")
    expect(preview.locator("pre.highlight code.language-python")).to_be_visible()
    expect(preview.locator(".paper-card")).to_contain_text("A ConvNet for the 2020s")
    page.locator("#id_body").press("End")
    page.locator("#id_body").type("\n\n[[arxiv:2301.99999]]")
    expect(preview.locator(".paper-ref-error")).to_contain_text("[[arxiv:2301.99999]]")
    page.locator("#id_body").fill(BODY)
    expect(preview.locator(".paper-ref-error")).to_have_count(0)

    page.get_by_label("Status*", exact=True).select_option("published")
    page.locator("[name=_save]").click()  # the theme's Save is a <button>
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    # A reader, not signed in, finds it in the archive, on its page and in the feed.
    reader = browser.new_context(base_url=live_server.url).new_page()
    reader.goto("/archive/")
    reader.get_by_role("link", name="Convolutions strike back").click()
    expect(reader).to_have_url(re.compile(r"/issues/convolutions-strike-back/$"))
    expect(reader.get_by_role("heading", level=1)).to_have_text(
        "Convolutions strike back"
    )
    expect(reader.locator(".prose pre.highlight")).to_contain_text("def forward")
    expect(reader.locator(".prose .paper-card")).to_contain_text(
        "A ConvNet for the 2020s"
    )
    expect(reader.locator(".citations")).to_contain_text("arXiv:2201.03545")

    feed = reader.request.get("/feed/")
    assert feed.ok
    assert "<title>Convolutions strike back</title>" in feed.text()
    assert "A ConvNet for the 2020s" in feed.text()
    reader.context.close()


def test_readers_switch_between_light_and_dark_themes(page):
    page.goto("/")
    page.emulate_media(color_scheme="light")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.get_by_role("button", name="Switch between light and dark theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert (
        page.evaluate("getComputedStyle(document.body).backgroundColor") != background
    )
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")


def test_a_draft_is_not_found_by_readers(page):
    from tests.factories.issues import IssueFactory

    IssueFactory(title="Not yet", slug="not-yet")
    response = page.goto("/issues/not-yet/")
    assert response.status == 404
    page.goto("/archive/")
    expect(page.get_by_text("Not yet")).to_have_count(0)
