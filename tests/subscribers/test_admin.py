from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Publication
from subscribers.models import Subscriber
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"
CHANGELIST = reverse("admin:subscribers_subscriber_changelist")


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("author", "a@example.org", "pw")
    client.force_login(user)
    return client


def test_changelist_shows_the_numbers_at_the_top(staff):
    SubscriberFactory.create_batch(3)
    SubscriberFactory(paused=True)
    old = SubscriberFactory()
    Subscriber.objects.filter(pk=old.pk).update(
        created=timezone.now() - timedelta(days=90)
    )
    SubscriberFactory(status="unsubscribed", unsubscribed_at=timezone.now())
    PendingSubscriberFactory()

    html = staff.get(CHANGELIST).content.decode()

    assert '<td data-stat="active-now"><strong>4</strong></td>' in html
    assert '<td data-stat="new-30-days">6</td>' in html
    assert '<td data-stat="unsubscribed-30-days">1</td>' in html
    assert 'data-stat="status-active"><a href="?status__exact=active">5</a>' in html
    assert 'data-stat="status-pending"><a href="?status__exact=pending">1</a>' in html


def test_changelist_filters_and_searches(staff):
    SubscriberFactory(email="ada@example.org", name="Ada")
    SubscriberFactory(email="left@example.org", status="unsubscribed")

    by_status = staff.get(CHANGELIST, {"status__exact": "unsubscribed"})
    by_search = staff.get(CHANGELIST, {"q": "ada"})

    assert "left@example.org" in by_status.content.decode()
    assert "ada@example.org" not in by_status.content.decode().split("result_list")[1]
    assert "ada@example.org" in by_search.content.decode()


def test_admin_actions_unsubscribe_resend_and_export(staff, commit, mailoutbox):
    active = SubscriberFactory(email="ada@example.org")
    pending = PendingSubscriberFactory(email="new@example.org")

    staff.post(
        CHANGELIST,
        {"action": "unsubscribe", "_selected_action": [active.pk]},
    )
    active.refresh_from_db()
    assert active.status == "unsubscribed"

    with commit():
        staff.post(
            CHANGELIST,
            {
                "action": "resend_confirmation",
                "_selected_action": [active.pk, pending.pk],
            },
        )
    assert [m.to for m in mailoutbox] == [["new@example.org"]]
    with commit():  # a second time the same day sends nothing
        staff.post(
            CHANGELIST,
            {"action": "resend_confirmation", "_selected_action": [pending.pk]},
        )
    assert len(mailoutbox) == 1

    response = staff.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [pending.pk]}
    )
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].startswith("email,name,status")
    assert "new@example.org,,pending" in body
    assert "ada@example.org" not in body


def test_admin_import_shows_a_report(staff):
    url = reverse("admin:subscribers_subscriber_import")
    assert staff.get(url).status_code == 200

    with (FIXTURES / "substack.csv").open("rb") as upload:
        response = staff.post(url, {"file": upload, "format": "auto"})

    html = response.content.decode()
    assert response.status_code == 200
    assert '<td data-report="created">3' in html
    assert '<td data-report="errors">3</td>' in html
    assert '<tr class="import-error"><td>4</td>' in html
    assert Subscriber.objects.count() == 3


def test_admin_import_of_an_unreadable_file_says_why(staff):
    url = reverse("admin:subscribers_subscriber_import")
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("x.csv", b"name,city\nAda,London\n")
    response = staff.post(url, {"file": upload, "format": "csv"}, follow=True)

    assert "no &#x27;email&#x27; column" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_publication_admin_bumps_the_consent_version_when_the_text_changes(staff):
    publication = Publication.load()
    url = reverse("admin:newsletter_publication_change", args=[publication.pk])
    assert (
        staff.get(reverse("admin:newsletter_publication_changelist"))["Location"] == url
    )
    data = {
        "name": "Deep Reads",
        "description": "",
        "sender_name": "",
        "sender_email": "news@example.org",
        "postal_address": "1 Lab Road",
        "welcome_email": "Hi",
        "consent_text": publication.consent_text,
    }

    staff.post(url, data)
    publication.refresh_from_db()
    assert publication.name == "Deep Reads" and publication.consent_text_version == 1

    staff.post(url, {**data, "consent_text": "New wording."})
    publication.refresh_from_db()
    assert publication.consent_text_version == 2


def test_the_admin_form_checks_and_normalises_the_address(staff):
    add = reverse("admin:subscribers_subscriber_add")
    form = {"name": "", "status": "active", "source": "admin"}
    SubscriberFactory(email="ada@example.org")

    typo = staff.post(add, {**form, "email": "ada@example..org"})
    taken = staff.post(add, {**form, "email": " ADA@Example.org "})
    added = staff.post(add, {**form, "email": "  Grace@Example.ORG "})

    assert typo.status_code == taken.status_code == 200
    assert "two periods in a row" in typo.content.decode()
    assert "already exists" in taken.content.decode()
    assert added.status_code == 302
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "ada@example.org",
        "grace@example.org",
    ]
