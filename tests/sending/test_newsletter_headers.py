"""Each newsletter's emails come under its own sender name and List-Id, whatever
text is stored for them."""

import re
from email.header import decode_header, make_header

import pytest

from issues.sending import services
from issues.sending.emails import Recipient, render_send
from issues.sending.emails.headers import format_sender, list_identifier
from newsletter.models import Newsletter, Publication
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers, parse
from tests.sending.test_services import outbox, outbox_messages, run_send  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def publication():
    publication = Publication.load()
    publication.name = "Papers Weekly"
    publication.sender_name = "Ada at Papers Weekly"
    publication.sender_email = "news@papers.example"
    publication.save()
    return publication


def head(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def message_for(issue) -> bytes:
    prepared = render_send(issue, send_id=None)["free"]
    return prepared.build(Recipient(email="reader@example.org", token="t0k3n"))


def test_two_newsletters_send_under_their_own_name_and_list(
    publication,
    outbox,  # noqa: F811
):
    monthly = Newsletter.default()
    monthly.name = "The monthly issue"
    monthly.save()
    announcements = Newsletter.objects.create(
        name="Announcements",
        slug="announcements",
        sender_name="Quire announcements",
        list_id="news.lists.papers.example",
        position=1,
    )
    make_subscribers(1)
    run_send(services.publish_issue(issue=IssueFactory(title="Monthly")))
    run_send(
        services.publish_issue(
            issue=IssueFactory(title="Big news", newsletter=announcements)
        )
    )

    by_subject = {m["Subject"]: m for m in outbox_messages(outbox)}
    assert by_subject["Monthly"]["From"] == (
        "Ada at Papers Weekly <news@papers.example>"
    )
    assert by_subject["Monthly"]["List-Id"] == (
        "The monthly issue <newsletter.papers.example>"
    )
    assert by_subject["Big news"]["From"] == (
        "Quire announcements <news@papers.example>"
    )
    assert by_subject["Big news"]["List-Id"] == (
        "Announcements <news.lists.papers.example>"
    )


HOSTILE_NAMES = {
    "line breaks": "Evil\r\nBcc: all@example.org\nX-Spam: yes",
    "very long": "Long name " * 150,
    "non-ASCII": "Zoë’s Bücher — 論文 " * 12,
    "specials": 'Ada "the" <admin@example.org>, et al.',
}


@pytest.mark.parametrize("case", HOSTILE_NAMES)
def test_hostile_newsletter_names_stay_one_header_each(publication, case):
    text = HOSTILE_NAMES[case]
    # Straight into the database, past the admin's one-line check.
    newsletter = Newsletter.objects.create(name="x", slug="hostile", position=5)
    # As long as each column takes (PostgreSQL refuses more; SQLite would not).
    Newsletter.objects.filter(pk=newsletter.pk).update(
        name=text[:100], sender_name=text[:200], list_id=text[:200]
    )
    newsletter.refresh_from_db()
    issue = IssueFactory(newsletter=newsletter)

    raw = message_for(issue)

    message = parse(raw)
    assert message["Bcc"] is None and message["X-Spam"] is None
    lines = head(raw).split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    assert not re.search(rb"[\r\n]", b"".join(lines))  # no bare CR or LF
    # Every encoded word within RFC 2047's 75 characters.
    assert all(len(word) <= 75 for word in re.findall(rb"=\?[^ ]*?\?=", head(raw)))
    sender = message["From"].addresses[0]
    assert sender.addr_spec == "news@papers.example"
    # Decoded as RFC 2047 says (the space between encoded words is not text),
    # which Python's address parser does not quite do.
    from_line = next(line for line in lines if line.startswith(b"From: "))
    decoded = str(make_header(decode_header(from_line[6:].decode("ascii"))))
    name = " ".join(text[:200].split())[:200].strip()
    assert decoded.rpartition(" <")[0].strip().strip('"') == name.replace('"', '\\"')
    list_id = message["List-Id"]
    assert re.fullmatch(r".+ <[a-z0-9.-]+>", list_id), list_id


def test_a_list_id_is_a_dot_atom_whatever_was_stored():
    def ident(list_id, slug="monthly", domain="example.org"):
        return list_identifier(list_id=list_id, slug=slug, domain=domain)

    assert ident("") == "monthly.example.org"
    assert ident("Monthly.Example.ORG") == "monthly.example.org"
    assert ident("<evil>\r\n.example.org") == "evil.example.org"
    assert ident("nodots") == "monthly.example.org"  # not an identifier: the default
    assert ident("a" * 300 + ".example.org") == "monthly.example.org"
    assert ident("", slug="", domain="") == "newsletter.localhost"


def test_a_sender_name_is_quoted_or_encoded_as_it_needs():
    assert format_sender("Ada", "a@example.org") == "Ada <a@example.org>"
    assert format_sender("Ada, Lovelace", "a@example.org") == (
        '"Ada, Lovelace" <a@example.org>'
    )
    encoded = format_sender("Zoë", "a@example.org")
    assert encoded.startswith("=?utf-8?") and encoded.endswith(" <a@example.org>")
    assert "\n" not in format_sender("Zoë " * 100, "a@example.org")
