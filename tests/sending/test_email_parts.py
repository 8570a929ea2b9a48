"""What a subscriber reads in an issue email: its plain-text part and its footer."""

import pytest

from issues.sending import services
from tests.factories.issues import IssueFactory, PaperFactory
from tests.sending.conftest import make_subscribers
from tests.sending.test_services import outbox, outbox_messages, run_send  # noqa: F401

pytestmark = pytest.mark.django_db

CODE = """\
def train(model, data):
    for batch in data:

        loss = model(batch)   # aligned  comment
        if loss > 1:
            raise ValueError("diverged")"""

BODY = f"""## Trend of the month

Scaling works[^1], mostly[^2]; see [[arxiv:2201.03545]] too.

```python
{CODE}
```

[[paper:convnext]]

As noted before[^1].

[^1]: Hoffmann et al. measured it.
[^2]: Not for *everything*.
"""


@pytest.fixture
def received(outbox, settings):  # noqa: F811
    settings.SITE_URL = "https://news.example"
    PaperFactory(
        slug="convnext", arxiv_id="2201.03545", title="A ConvNet for the 2020s",
        authors=["Zhuang Liu", "Hanzi Mao"], venue="CVPR", year=2022,
        code_url="https://github.com/facebookresearch/ConvNeXt",
    )  # fmt: skip
    (subscriber,) = make_subscribers(1)
    issue = IssueFactory(slug="trends", body=BODY)
    run_send(services.publish_issue(issue=issue))
    (message,) = outbox_messages(outbox)
    return subscriber, message


def text_of(message) -> str:
    # Lines in a MIME part end with CRLF; a mail program shows them as lines.
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_text_part_keeps_code_exactly_as_written(received):
    _, message = received

    assert CODE in text_of(message)


def test_text_part_numbers_footnotes_and_lists_them_at_the_end(received):
    text = text_of(received[1])

    assert "Scaling works[1], mostly[2];" in text
    assert "As noted before[1]." in text  # the second reference reads [1] too
    notes = text[text.index("\nNotes\n") :]
    assert "\n[1] Hoffmann et al. measured it.\n" in notes
    assert "\n[2] Not for everything.\n" in notes
    assert "↩" not in text


def test_text_part_drops_heading_permalinks(received):
    text = text_of(received[1])

    assert "## Trend of the month\n" in text
    assert "Trend of the month #" not in text
    assert "#trend-of-the-month" not in text


def test_text_part_puts_a_paper_cards_title_authors_and_ids_on_their_own_lines(
    received,
):
    text = text_of(received[1])

    assert (
        "A ConvNet for the 2020s (https://news.example/papers/convnext/)\n"
        "Zhuang Liu, Hanzi Mao · CVPR 2022\n"
        "arXiv:2201.03545 (https://arxiv.org/abs/2201.03545) · "
        "code (https://github.com/facebookresearch/ConvNeXt)\n"
    ) in text


def test_issue_email_footer_links_to_manage_the_subscription(received):
    subscriber, message = received
    html = message.get_body(("html",)).get_content()
    text = text_of(message)

    assert '<a href="https://news.example/account/"' in html
    assert "Manage your subscription</a>" in html
    assert "Manage your subscription: https://news.example/account/\n" in text
    unsubscribe = f"https://news.example/unsubscribe/{subscriber.token}/"
    assert f"Unsubscribe: {unsubscribe}" in text
    assert unsubscribe in html


def test_html_part_has_no_heading_permalinks(received):
    html = received[1].get_body(("html",)).get_content()

    assert "header-anchor" not in html
    assert 'href="#trend-of-the-month"' not in html
