"""Importing papers is for staff who may add and change papers; nobody else."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from issues.models import Paper
from subscribers.sessions import SESSION_KEY
from tests.factories.issues import PaperFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "issues"
IMPORT = reverse("admin:issues_paper_import")
EXPORT = reverse("admin:issues_paper_export")


def _post(client):
    data = (FIXTURES / "papers.bib").read_bytes()
    return client.post(
        IMPORT,
        {
            "file": SimpleUploadedFile("papers.bib", data),
            "format": "auto",
            "fill_empty": "on",
        },
    )


def _state() -> list:
    return list(Paper.objects.order_by("pk").values())


def _staff(*codenames: str):
    user = get_user_model().objects.create_user(
        "staffer", "staffer@example.org", "pw-for-tests-only", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="issues", codename__in=codenames
        )
    )
    return user


@pytest.fixture
def existing(db):
    # A paper the file matches, with empty fields an import would fill in.
    return PaperFactory(arxiv_id="2201.03545", venue="", authors=[])


def test_an_outsider_is_sent_to_the_login_page_and_nothing_changes(client, existing):
    before = _state()

    posted = _post(client)
    shown = client.get(IMPORT)
    exported = client.get(EXPORT)

    for response in (posted, shown, exported):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert _state() == before


def test_a_signed_in_subscriber_is_no_staff(client, existing):
    subscriber = SubscriberFactory()
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    before = _state()

    response = _post(client)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert _state() == before


def test_a_signed_in_user_who_is_not_staff_is_refused(client, existing):
    user = get_user_model().objects.create_user("reader", "r@example.org", "pw")
    user.user_permissions.set(Permission.objects.filter(codename__endswith="_paper"))
    client.force_login(user)
    before = _state()

    response = _post(client)

    assert response.status_code == 302
    assert _state() == before


@pytest.mark.parametrize(
    "codenames",
    [
        ("view_paper",),
        ("view_paper", "add_paper"),  # may add, but an import also changes papers
        ("view_paper", "change_paper"),  # may change, but an import also adds
        ("add_issue", "change_issue", "view_issue"),
    ],
)
def test_staff_without_both_add_and_change_paper_are_refused(
    client, existing, codenames
):
    client.force_login(_staff(*codenames))
    before = _state()

    posted = _post(client)
    shown = client.get(IMPORT)

    assert posted.status_code == 403 and shown.status_code == 403
    assert _state() == before
    changelist = client.get(reverse("admin:issues_paper_changelist"))
    if changelist.status_code == 200:
        assert IMPORT not in changelist.content.decode()


def test_staff_without_the_view_permission_cannot_export(client, existing):
    client.force_login(_staff("view_issue"))

    assert client.get(EXPORT).status_code == 403


def test_staff_with_add_and_change_paper_may_import(client, existing):
    client.force_login(_staff("view_paper", "add_paper", "change_paper"))

    response = _post(client)

    assert response.status_code == 200
    assert Paper.objects.count() == 47
