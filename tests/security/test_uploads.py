"""Uploaded images are served in production, and nothing else is served as a page."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from issues.models import Issue
from tests.factories.issues import IssueFactory, issue_admin_form

pytestmark = pytest.mark.django_db


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def media(settings, tmp_path):
    """Put uploads in a fresh folder inside tmp_path, with DEBUG off."""
    settings.DEBUG = False
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(
        get_user_model().objects.create_superuser("author", "a@example.org", "pw")
    )
    return client


def _upload(staff_client) -> str:
    image = SimpleUploadedFile("chart.png", _png(), content_type="image/png")
    response = staff_client.post("/markdownx/upload/", {"image": image})
    assert response.status_code == 200
    return re.search(r"\((/media/[^)]+)\)", response.json()["image_code"])[1]


def test_an_uploaded_png_is_served_with_debug_off(media, staff_client):
    url = _upload(staff_client)

    response = Client().get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "max-age=" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == _png()


def test_an_image_in_a_published_issue_shows_on_its_page(media, staff_client):
    url = _upload(staff_client)
    issue = IssueFactory(published=True, body=f"A chart:\n\n![chart]({url})\n")

    page = Client().get(issue.get_absolute_url()).content.decode()
    (src,) = re.findall(r'<img[^>]* src="(/media/[^"]+)"', page)

    assert Client().get(src).status_code == 200
    assert Issue.objects.get().body_html.count(url) == 1


def test_an_answer_to_an_unchanged_image_is_304(media, staff_client):
    url = _upload(staff_client)
    first = Client().get(url)

    again = Client().get(url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])

    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/media/../secret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/..%2fsecret.txt",
        "/media/markdownx/%2e%2e/%2e%2e/secret.txt",
        "/media//secret.txt",
        "/media/%2Fetc%2Fpasswd",
        "/media//etc/passwd",
        "/media/x%00.png",
    ],
)
def test_paths_outside_the_media_folder_answer_404(media, path):
    (media.parent / "secret.txt").write_text("the database password")

    response = Client().get(path)

    assert response.status_code == 404
    assert b"database password" not in response.content


def test_a_link_inside_media_to_a_file_outside_is_not_followed(media):
    (media.parent / "secret.txt").write_text("the database password")
    (media / "innocent.png").symlink_to(media.parent / "secret.txt")

    response = Client().get("/media/innocent.png")

    assert response.status_code == 404


def test_folders_and_missing_files_answer_404(media):
    (media / "covers").mkdir()

    assert Client().get("/media/covers/").status_code == 404
    assert Client().get("/media/covers").status_code == 404
    assert Client().get("/media/nothing.png").status_code == 404


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("page.html", b"<script>alert(document.cookie)</script>"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("notes.txt", b"<script>alert(1)</script>"),
        ("noextension", b"<html><script>alert(1)</script></html>"),
        ("x.PNG.html", b"<script>alert(1)</script>"),
    ],
)
def test_files_that_are_not_uploaded_image_types_are_only_downloads(
    media, name, content
):
    (media / name).write_bytes(content)

    response = Client().get(f"/media/{name}")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_upper_case_image_extension_keeps_its_type(media):
    (media / "PHOTO.JPG").write_bytes(b"\xff\xd8\xff")

    response = Client().get("/media/PHOTO.JPG")

    assert response["Content-Type"] == "image/jpeg"
    assert "Content-Disposition" not in response


def test_media_cannot_be_written_through_the_media_address(media):
    response = Client().post("/media/new.png", {"x": "y"})

    assert response.status_code == 405
    assert list(media.iterdir()) == []


def test_turned_off_django_serves_no_media(media, settings, staff_client):
    url = _upload(staff_client)
    settings.QUIRE_SERVE_MEDIA = False

    assert Client().get(url).status_code == 404


def _image(name: str, image_format: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, format=image_format)
    return SimpleUploadedFile(name, buffer.getvalue())


def test_a_cover_image_in_a_format_not_served_as_an_image_is_refused(
    media, staff_client
):
    response = staff_client.post(
        "/admin/issues/issue/add/",
        issue_admin_form(cover_image=_image("cover.bmp", "BMP")),
    )

    assert response.status_code == 200
    assert "Use a JPEG, PNG, GIF or WebP image" in response.content.decode()
    assert not Issue.objects.exists()
    assert list(media.rglob("*.bmp")) == []


def test_a_png_cover_is_stored_and_served(media, staff_client):
    response = staff_client.post(
        "/admin/issues/issue/add/",
        issue_admin_form(cover_image=_image("cover.png", "PNG")),
    )

    assert response.status_code == 302
    cover = Issue.objects.get().cover_image
    served = Client().get(cover.url)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
