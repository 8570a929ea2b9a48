"""Pages render with hashed static files, as they are served when DEBUG is off."""

import re

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


def test_favicon_ico_answers_with_the_icon(client, manifest_static):
    response = client.get("/favicon.ico", follow=True)

    ((target, status),) = response.redirect_chain
    assert status == 301 and re.fullmatch(r"/static/favicon\.[0-9a-f]+\.ico", target)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"
    page = client.get("/").content.decode()
    svg = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    assert client.get(svg.group(1)).status_code == 200
