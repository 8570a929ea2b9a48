"""Being staff is not a right of its own: drafts, paid parts and the editor's
endpoints need the admin right they stand for, and a session that still owes its
two-factor code gets nothing more than a reader does."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db

PREVIEW = "/markdownx/markdownify/"
UPLOAD = "/markdownx/upload/"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG")
    return out.getvalue()


def staff_client(*codenames: str, superuser: bool = False) -> Client:
    users = get_user_model().objects
    if superuser:
        user = users.create_superuser("boss", "boss@example.org", "s3cret-pass!")
    else:
        user = users.create_user(
            "clerk", "clerk@example.org", "s3cret-pass!", is_staff=True
        )
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def draft():
    return IssueFactory(title="Not out yet")


@pytest.fixture
def paid_issue():
    return IssueFactory(
        body="Free opening.\n\n<!-- paywall -->\n\nOnly for supporters.",
        title="Half paid",
        published=True,
    )


def test_staff_without_the_right_to_view_issues_see_no_draft(draft):
    client = staff_client("view_subscriber")

    assert client.get(draft.get_absolute_url()).status_code == 404


def test_staff_without_the_right_to_view_issues_see_no_paid_part(paid_issue):
    client = staff_client("view_subscriber")

    page = client.get(paid_issue.get_absolute_url()).content.decode()

    assert "Free opening." in page
    assert "Only for supporters." not in page


def test_staff_who_may_view_issues_see_drafts_and_paid_parts(draft, paid_issue):
    client = staff_client("view_issue")

    assert client.get(draft.get_absolute_url()).status_code == 200
    page = client.get(paid_issue.get_absolute_url()).content.decode()
    assert "Only for supporters." in page


def test_a_superuser_owing_a_two_factor_code_reads_as_anyone(
    settings, draft, paid_issue
):
    settings.QUIRE_REQUIRE_2FA_FOR_SUPERUSERS = True
    client = staff_client(superuser=True)

    assert client.get(draft.get_absolute_url()).status_code == 404
    page = client.get(paid_issue.get_absolute_url()).content.decode()
    assert "Only for supporters." not in page


def test_staff_who_may_not_edit_get_no_editor_preview():
    client = staff_client("view_issue", "view_paper")

    response = client.post(PREVIEW, {"content": "**hi**"})

    assert response.status_code == 403
    assert "edit issues or papers" in response.json()["error"]


def test_staff_who_may_not_edit_upload_nothing(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = staff_client("view_issue", "change_subscriber")
    image = SimpleUploadedFile("cat.png", png(), content_type="image/png")

    assert client.post(UPLOAD, {"image": image}).status_code == 403
    assert not list(tmp_path.rglob("*.png"))


def test_a_superuser_owing_a_two_factor_code_gets_no_editor_endpoint(
    settings, tmp_path
):
    settings.QUIRE_REQUIRE_2FA_FOR_SUPERUSERS = True
    settings.MEDIA_ROOT = tmp_path
    client = staff_client(superuser=True)
    image = SimpleUploadedFile("cat.png", png(), content_type="image/png")

    preview = client.post(PREVIEW, {"content": "**hi**"})
    upload = client.post(UPLOAD, {"image": image})

    assert preview.status_code == 403
    assert "two-factor" in preview.json()["error"]
    assert upload.status_code == 403
    assert not list(tmp_path.rglob("*.png"))


def test_staff_who_may_change_papers_only_still_preview_a_summary():
    client = staff_client("change_paper")

    assert client.post(PREVIEW, {"content": "**hi**"}).status_code == 200
