"""Pages render with hashed static files, as they are served when DEBUG is off."""

import pytest
from django.core.management import call_command

from tests.factories.issues import IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db

MANIFEST = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"


@pytest.fixture
def manifest_static(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": MANIFEST},
    }
    # Changing STORAGES resets Django's storage objects (django.test.signals).
    call_command("collectstatic", interactive=False, verbosity=0)


def test_every_reader_page_finds_its_static_files_in_the_manifest(
    client, admin_client, manifest_static
):
    issue = IssueFactory(published=True)
    paper = PaperFactory()
    pages = [
        "/",
        "/archive/",
        issue.get_absolute_url(),
        "/papers/",
        paper.get_absolute_url(),
        "/search/?q=issue",
        "/subscribe/",
        "/account/login/",
        "/pricing/",
        "/billing/cancel/",
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url
    for url in ["/admin/", f"/admin/issues/issue/{issue.pk}/change/"]:
        assert admin_client.get(url).status_code == 200, url
