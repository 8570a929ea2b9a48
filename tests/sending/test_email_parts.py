"""What a subscriber reads in an issue email: its plain-text part and its footer."""

import re

import pytest

from issues.sending import services
from issues.sending.emails.tracking import read_link_part
from newsletter.models import Publication
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


def send_to_one(outbox, settings, *, tracking: bool):  # noqa: F811
    settings.SITE_URL = "https://news.example"
    PaperFactory(
        slug="convnext", arxiv_id="2201.03545", title="A ConvNet for the 2020s",
        authors=["Zhuang Liu", "Hanzi Mao"], venue="CVPR", year=2022,
        code_url="https://github.com/facebookresearch/ConvNeXt",
    )  # fmt: skip
    (subscriber,) = make_subscribers(1, tracking=tracking)
    issue = IssueFactory(slug="trends", body=BODY)
    run_send(services.publish_issue(issue=issue))
    (message,) = outbox_messages(outbox)
    return subscriber, message


@pytest.fixture
def received(outbox, settings):  # noqa: F811
    # A subscriber who lets nothing be tracked reads the addresses themselves.
    return send_to_one(outbox, settings, tracking=False)


@pytest.fixture
def tracked(outbox, settings):  # noqa: F811
    """The email to a subscriber who allows tracking."""
    return send_to_one(outbox, settings, tracking=True)


def tracked_numbers(part: str) -> dict[str, int]:
    """Each address a part's tracked links lead to, and its link number."""
    found = {}
    for link_path in re.findall(r"https?://[^/\s]+/r/[^/\s]+/([^/\s]+)/", part):
        link = read_link_part(link_path)
        assert link is not None, link_path
        if link.number:  # the hidden link is the HTML's alone
            found[link.url] = link.number
    return found


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


def test_text_part_tracks_the_html_links_with_the_same_numbers(tracked):
    reader, message = tracked
    html = message.get_body(("html",)).get_content()
    text = text_of(message)

    in_text, in_html = tracked_numbers(text), tracked_numbers(html)
    # A click in either part counts for the same link.
    assert in_text.items() <= in_html.items()
    assert set(in_text) >= {
        "https://news.example/papers/convnext/",
        "https://arxiv.org/abs/2201.03545",
        "https://github.com/facebookresearch/ConvNeXt",
    }
    assert "(https://github.com/facebookresearch/ConvNeXt)" not in text
    assert "code (https://news.example/r/" in text
    # The code, the account page and the unsubscribe address are as they were.
    assert CODE in text
    assert "Manage your subscription: https://news.example/account/\n" in text
    assert f"Unsubscribe: https://news.example/unsubscribe/{reader.token}/" in text


def test_text_part_tracks_nothing_when_the_publication_tracks_no_clicks(
    outbox,  # noqa: F811
    settings,
):
    publication = Publication.load()
    publication.track_clicks = False
    publication.save()

    _, message = send_to_one(outbox, settings, tracking=True)

    text = text_of(message)
    assert "/r/" not in text
    assert "code (https://github.com/facebookresearch/ConvNeXt)" in text


def test_the_provider_path_tracks_the_same_plain_text_as_smtp(settings):
    """Through a provider the text part is personalised_text(); over SMTP, build()."""
    from issues.sending.emails import Recipient, render_segment
    from issues.sending.models import Send
    from tests.sending.conftest import parse

    settings.SITE_URL = "https://news.example"
    issue = IssueFactory(slug="paths", body="See [the code](https://example.org/code).")
    prepared = render_segment(
        issue=issue, segment="free", send_id=Send.objects.create(issue=issue).pk
    )
    tracked = Recipient(
        email="a@example.org", token="t" * 32, message_id="m1@x", delivery_id=7,
        tracking=True,
    )  # fmt: skip
    private = Recipient(
        email="b@example.org", token="u" * 32, message_id="m2@x", delivery_id=8
    )

    for recipient in (tracked, private):
        over_smtp = parse(prepared.build(recipient)).get_body(("plain",)).get_content()
        through_provider = prepared.personalised_text(recipient)
        assert over_smtp.replace("\r\n", "\n") == through_provider.replace("\r\n", "\n")
    in_text = tracked_numbers(prepared.personalised_text(tracked))
    assert set(in_text) == {
        "https://example.org/code",
        f"https://news.example{issue.get_absolute_url()}",
    }
    assert (
        in_text.items() <= tracked_numbers(prepared.personalised_html(tracked)).items()
    )
    assert "/7." in prepared.personalised_text(tracked)
    assert "/r/" not in prepared.personalised_text(private)
    assert "(https://example.org/code)" in prepared.personalised_text(private)
