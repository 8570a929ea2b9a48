"""An import puts its subscribers in newsletters and gives them labels, set-based."""

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from newsletter.models import Newsletter
from subscribers.importing import ImportFailed, import_subscribers
from subscribers.models import Label, Subscriber, Subscription, Suppression, hash_email
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"


def run(name: str, **options):
    with (FIXTURES / name).open(encoding="utf-8-sig", newline="") as stream:
        return import_subscribers(stream=stream, filename=name, **options)


def labels_of(email: str) -> set[str]:
    return set(
        Subscriber.objects.get(email=email).labels.values_list("name", flat=True)
    )


def newsletters_of(email: str) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber__email=email).values_list(
            "newsletter__slug", flat=True
        )
    )


@pytest.fixture
def lists(db):
    monthly = Newsletter.default()
    monthly.slug = "monthly"
    monthly.save()
    news = Newsletter.objects.create(
        name="Announcements", slug="news", join_by_default=False, position=2
    )
    return monthly, news


def test_a_labels_column_gives_each_row_its_labels_and_refuses_hostile_names(db):
    Label.objects.create(name="VIP")

    report = run("plain_labels.csv")

    assert labels_of("ada@example.org") == {"VIP", "early adopter", "conference 2024"}
    # The existing label's spelling wins over the file's "vip".
    assert labels_of("grace@example.org") == {"VIP", "Speaker"}
    assert labels_of("linus@example.org") == {"fine"}
    assert labels_of("mary@example.org") == set()
    # Control characters are dropped, runs of spaces made one.
    assert labels_of("zoe@example.org") == {"a[31mred[0m", "spaced out"}
    assert sorted(Label.objects.values_list("name", flat=True)) == [
        "Speaker",
        "VIP",
        "a[31mred[0m",
        "conference 2024",
        "early adopter",
        "fine",
        "spaced out",
    ]
    refused = dict(report.refused_labels)
    assert sorted(refused) == [4, 5]
    assert "formula" in refused[4] and "HYPERLINK" in refused[4]
    assert "longer than 60" in refused[5]
    # The rows themselves imported.
    assert Subscriber.objects.count() == 5 and report.errors == []
    # A labels column does not make a plain list look like Ghost's export.
    assert report.format == "csv" and report.created == {"pending": 5}
    assert report.labelled == 8
    assert "line 4: label not given" in report.summary()


def test_ghost_labels_come_with_the_members(db):
    report = run("ghost_labels.csv")

    assert report.format == "ghost"
    assert labels_of("katherine@example.org") == {"NASA", "Langley"}
    assert labels_of("dorothy@example.org") == {"NASA"}
    assert labels_of("annie@example.org") == set()


def test_without_a_choice_only_new_subscribers_join_the_default_newsletters(lists):
    monthly, news = lists
    # Already here, and chose the announcements only: the import keeps that.
    kept = SubscriberFactory(email="grace@example.org")
    kept.newsletters.set([news])

    report = run("plain_labels.csv")

    assert newsletters_of("ada@example.org") == {"monthly"}
    assert newsletters_of("grace@example.org") == {"news"}
    assert report.joined == 4


def test_chosen_newsletters_and_labels_go_to_everyone_in_the_file(lists):
    monthly, news = lists
    existing = SubscriberFactory(email="grace@example.org")
    existing.newsletters.set([monthly])
    existing.labels.add(Label.objects.create(name="Reviewer"))
    left = SubscriberFactory(email="linus@example.org", status="unsubscribed")
    Suppression.objects.create(
        email_hash=hash_email("mary@example.org"), reason="complained"
    )

    report = run(
        "plain_labels.csv", newsletters=[news.pk], labels=["Imported 2026", " VIP "]
    )

    assert newsletters_of("ada@example.org") == {"news"}  # the choice replaces
    # Added, never taken away.
    assert newsletters_of("grace@example.org") == {"monthly", "news"}
    assert labels_of("grace@example.org") == {
        "Reviewer",
        "VIP",
        "Speaker",
        "Imported 2026",
    }
    assert "Imported 2026" in labels_of("zoe@example.org")
    # An import never re-subscribes anyone: the row only records the choice.
    left.refresh_from_db()
    assert left.status == "unsubscribed"
    assert not Subscriber.objects.filter(email="mary@example.org").exists()
    assert report.suppressed == 1
    assert report.joined == 4  # ada, grace, linus, zoe
    assert not Subscriber.objects.receiving(newsletter=news.pk).filter(
        email="linus@example.org"
    )


def test_no_newsletter_chosen_means_none(lists):
    run("plain_labels.csv", newsletters=[])

    assert not Subscription.objects.exists()


def test_a_refused_label_for_every_row_imports_nothing(db):
    with pytest.raises(ImportFailed, match="formula"):
        run("plain_labels.csv", labels=["@SUM(1+1)"])
    assert not Subscriber.objects.exists() and not Label.objects.exists()


def test_a_row_may_not_flood_the_label_list(db):
    cell = ",".join(f"tag{n}" for n in range(50))
    body = f'email,labels\nada@example.org,"{cell}"\n'
    report = import_subscribers(stream=io.StringIO(body))

    assert Label.objects.count() == 20
    assert report.refused_labels == [(2, "more than 20 labels in one row")]


def test_importing_labels_stays_a_handful_of_queries(
    lists, django_assert_max_num_queries
):
    lines = "".join(
        f"reader{n}@example{n % 50}.org,Reader {n},group{n % 7};all\n"
        for n in range(5000)
    )
    SubscriberFactory(email="reader1@example1.org")

    with django_assert_max_num_queries(30):
        report = import_subscribers(
            stream=io.StringIO("email,name,labels\n" + lines),
            newsletters=[lists[1].pk],
            labels=["spring import"],
        )

    assert report.created == {"pending": 4999} and report.existing == 1
    assert Subscription.objects.filter(newsletter=lists[1]).count() == 5000
    through = Subscriber.labels.through.objects
    assert through.count() == 5000 * 3
    assert through.filter(label__name="group3").count() == len(range(3, 5000, 7))


def test_the_command_takes_newsletters_and_labels(lists):
    monthly, news = lists
    out = io.StringIO()

    call_command(
        "import_subscribers",
        str(FIXTURES / "plain_labels.csv"),
        "--newsletter",
        "news",
        "--newsletter",
        "monthly",
        "--label",
        "from the command",
        stdout=out,
    )

    assert newsletters_of("zoe@example.org") == {"monthly", "news"}
    assert "from the command" in labels_of("zoe@example.org")
    assert "Newsletter subscriptions added: 10" in out.getvalue()
    with pytest.raises(CommandError, match="no-such"):
        call_command(
            "import_subscribers",
            str(FIXTURES / "plain_labels.csv"),
            "--newsletter",
            "no-such",
        )
