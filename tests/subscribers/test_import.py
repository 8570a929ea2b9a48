import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from subscribers.importing import ImportFailed, import_subscribers
from subscribers.models import Subscriber, Suppression, hash_email
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"


def run(name: str, format: str = "auto"):
    with (FIXTURES / name).open(encoding="utf-8-sig", newline="") as stream:
        return import_subscribers(stream=stream, format=format, filename=name)


def statuses() -> dict[str, str]:
    return dict(Subscriber.objects.values_list("email", "status"))


def test_substack_export(db):
    report = run("substack.csv")

    assert report.format == "substack"
    assert statuses() == {
        "ada@example.org": "active",
        "grace@example.org": "active",
        "linus@example.org": "unsubscribed",
    }
    assert report.rows == 7 and report.duplicates == 1
    assert [line for line, _ in report.errors] == [4, 7, 8]
    reasons = dict(report.errors)
    assert "not-an-email" in reasons[4] and "@-sign" in reasons[4]
    assert "created_at" in reasons[7]
    assert reasons[8] == "no email address"
    grace = Subscriber.objects.get(email="grace@example.org")
    assert grace.source == "import"
    assert grace.consent_at == datetime(2023, 2, 1, 12, 30, tzinfo=UTC)
    assert grace.consent_source == "import:substack:substack.csv"
    assert grace.confirmed_at is not None


def test_ghost_members_csv(db):
    report = run("ghost.csv")

    assert report.format == "ghost"
    assert statuses() == {
        "katherine@example.org": "active",
        "dorothy@example.org": "unsubscribed",
    }
    assert Subscriber.objects.get(email="katherine@example.org").name == (
        "Katherine Johnson"
    )
    assert report.duplicates == 1
    assert report.skipped == [(5, "deleted in Ghost")]
    assert [line for line, _ in report.errors] == [4, 7]
    assert "maybe" in dict(report.errors)[7]


def test_mailchimp_audience_export(db):
    report = run("mailchimp.csv")

    assert report.format == "mailchimp"
    assert statuses() == {"alan@example.org": "active", "john@example.org": "pending"}
    alan = Subscriber.objects.get(email="alan@example.org")
    assert alan.name == "Alan Turing"
    assert alan.consent_at == datetime(2021, 5, 1, 10, 5, tzinfo=UTC)
    assert alan.consent_ip == "192.0.2.2"
    john = Subscriber.objects.get(email="john@example.org")
    assert john.consent_at is None and john.consent_source == ""
    assert report.duplicates == 1
    assert [line for line, _ in report.errors] == [4, 6]
    assert "OPTIN_TIME" in dict(report.errors)[6]


def test_mailchimp_unsubscribed_export(db):
    report = run("mailchimp_unsubscribed.csv", format="mailchimp")

    assert statuses() == {"frances@example.org": "unsubscribed"}
    assert [line for line, _ in report.errors] == [3]


def test_plain_csv_merges_with_what_exists_and_keeps_suppressed_out(db):
    SubscriberFactory(email="ada@example.org", status="unsubscribed", name="")
    Suppression.objects.create(
        email_hash=hash_email("deleted@example.org"), reason="deleted"
    )

    report = run("plain.csv", format="csv")

    assert report.format == "csv"
    assert statuses() == {
        "ada@example.org": "unsubscribed",  # an import never re-subscribes anyone
        "new@example.org": "pending",
        "quoted@example.org": "pending",
    }
    assert Subscriber.objects.get(email="ada@example.org").name == "Ada Lovelace"
    assert Subscriber.objects.get(email="quoted@example.org").name == "Quoted, Person"
    assert report.existing == 1
    assert report.suppressed == 1
    assert report.duplicates == 1
    assert report.created == {"pending": 2}
    assert [line for line, _ in report.errors] == [4]
    assert not Subscriber.objects.receiving().exists()


def test_plain_csv_without_a_header(db):
    report = run("plain_headerless.csv")

    assert statuses() == {
        "someone@example.org": "pending",
        "other@example.org": "pending",
    }
    assert [line for line, _ in report.errors] == [3]


def test_importing_the_same_file_twice_adds_nothing(db):
    run("substack.csv")
    before = statuses()

    report = run("substack.csv")

    assert statuses() == before
    assert report.created_total == 0 and report.existing == 3


def test_a_file_without_an_email_column_imports_nothing(db):
    with pytest.raises(ImportFailed, match="email"):
        import_subscribers(stream=io.StringIO("name,city\nAda,London\n"), format="csv")
    assert not Subscriber.objects.exists()


def test_a_file_that_is_not_utf8_imports_nothing(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\nzoe@example.org,Zo\xeb\n".encode("latin-1"))

    with pytest.raises(CommandError, match="UTF-8"):
        call_command("import_subscribers", str(path))
    assert not Subscriber.objects.exists()


def test_import_command_prints_the_report(db):
    out = io.StringIO()

    call_command(
        "import_subscribers",
        str(FIXTURES / "ghost.csv"),
        "--format",
        "ghost",
        stdout=out,
    )

    text = out.getvalue()
    assert "Added 2 subscribers" in text
    assert "line 4:" in text and "line 7:" in text


def test_a_large_import_runs_in_a_handful_of_queries(django_assert_max_num_queries):
    lines = "".join(f"reader{n}@example{n % 50}.org,Reader {n}\n" for n in range(5000))

    with django_assert_max_num_queries(15):
        report = import_subscribers(stream=io.StringIO("email,name\n" + lines))

    assert report.created == {"pending": 5000}
    assert Subscriber.objects.count() == 5000
