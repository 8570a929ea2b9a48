"""Content that native code cannot take is refused, through every door, and changes
nothing: a body nested thousands deep (it crashed the email's CSS inliner), one too
long or with a huge table, and an image that decodes to gigabytes.
"""

import io
import struct
import zlib
from functools import cache

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from issues.models import Issue, Paper
from issues.rendering import render_issue_body, render_markdown
from issues.rendering.limits import ContentTooLarge, check_markdown
from issues.sending.emails import render_segment
from tests.factories.issues import IssueFactory, issue_admin_form

pytestmark = pytest.mark.django_db

# The attacks: each once crashed a worker (the first two) or would reach the
# parsers far beyond what any issue needs.
NESTED_EMPHASIS = "*a " * 10_000 + "b" + " a*" * 10_000  # 60 KB
NESTED_DIVS = "<div>" * 50_000
NESTED_QUOTES = ">" * 10_000 + " deep"
NESTED_LISTS = "".join("  " * level + "- item\n" for level in range(60))
HUGE_TABLE = "| a | b |\n|---|---|\n" + "| 1 | 2 |\n" * 1_000
HOSTILE_BODIES = {
    "nested emphasis": (NESTED_EMPHASIS, "nested 10,000 levels deep at line 1"),
    "nested divs": (NESTED_DIVS, "nested 50,000 levels deep at line 1"),
    "nested quotes": (NESTED_QUOTES, "nested 10,000 levels deep at line 1"),
    "nested lists": (NESTED_LISTS, "nested 60 levels deep at line 60"),
    "huge table": (HUGE_TABLE, "The table at line 1 has 1,001 rows"),
}


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _body_errors(response) -> list[str]:
    return response.context["adminform"].form.errors.get("body", [])


# --- Bodies through the admin ---------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_the_admin_refuses_to_add_an_issue_with_a_hostile_body(editor_client, name):
    body, message = HOSTILE_BODIES[name]

    response = editor_client.post(
        reverse("admin:issues_issue_add"), issue_admin_form(body=body)
    )

    assert response.status_code == 200
    (error,) = _body_errors(response)
    assert message in error
    assert not Issue.objects.exists()


def test_the_refusal_names_the_line_and_the_limit(editor_client):
    body = "An intro.\n\nMore.\n\n" + ">" * 61 + " Too deep."

    response = editor_client.post(
        reverse("admin:issues_issue_add"), issue_admin_form(body=body)
    )

    (error,) = _body_errors(response)
    assert "nested 61 levels deep at line 5; at most 40 levels are allowed" in error
    assert "flatten the lists and quotes" in error


def test_the_admin_refuses_to_change_an_issue_to_a_hostile_body(editor_client):
    issue = IssueFactory(body="Stays as it was.")
    stored = Issue.objects.values().get(pk=issue.pk)

    response = editor_client.post(
        reverse("admin:issues_issue_change", args=[issue.pk]),
        issue_admin_form(body=NESTED_DIVS, slug=issue.slug, title=issue.title),
    )

    assert response.status_code == 200
    (error,) = _body_errors(response)
    assert "at most 40 levels are allowed" in error
    assert Issue.objects.values().get(pk=issue.pk) == stored


def test_the_admin_refuses_a_body_over_the_size_limit(editor_client, settings):
    settings.QUIRE_BODY_MAX_CHARS = 10_000

    response = editor_client.post(
        reverse("admin:issues_issue_add"),
        issue_admin_form(body="word " * 2_000 + "words"),
    )

    (error,) = _body_errors(response)
    assert "10,005 characters long; at most 10,000 are allowed" in error
    assert not Issue.objects.exists()


def test_the_admin_refuses_a_table_with_too_many_cells(editor_client, settings):
    settings.QUIRE_TABLE_MAX_CELLS = 100
    body = "| " + " | ".join("c" * 10) + " |\n" + "|---" * 10 + "|\n"
    body += ("| " + " | ".join("1" * 10) + " |\n") * 10

    response = editor_client.post(
        reverse("admin:issues_issue_add"), issue_admin_form(body=body)
    )

    (error,) = _body_errors(response)
    assert "The table at line 1 has 110 cells; at most 100 are allowed" in error
    assert not Issue.objects.exists()


def test_the_admin_refuses_a_paper_summary_with_a_hostile_body(editor_client):
    response = editor_client.post(
        reverse("admin:issues_paper_add"),
        {"title": "A ConvNet for the 2020s", "slug": "convnext",
         "summary": NESTED_EMPHASIS},
    )  # fmt: skip

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "at most 40 levels are allowed" in errors["summary"][0]
    assert not Paper.objects.exists()


# --- The previews ---------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_the_editor_preview_refuses_a_hostile_body_with_the_message(
    editor_client, name
):
    body, message = HOSTILE_BODIES[name]

    response = editor_client.post("/markdownx/markdownify/", {"content": body})

    assert response.status_code == 400
    text = response.content.decode()
    assert 'class="content-refused"' in text and message in text


@pytest.mark.parametrize("name", ["nested emphasis", "nested divs"])
def test_a_hostile_body_saved_behind_the_form_shows_a_notice_in_both_previews(
    editor_client, name
):
    # A command or the shell: Issue.save renders, the form's check is skipped.
    body, message = HOSTILE_BODIES[name]
    issue = IssueFactory(body=body)

    email = editor_client.get(reverse("admin:sending_preview_raw", args=[issue.pk]))
    web = editor_client.get(issue.get_absolute_url())

    for response in (email, web):
        assert response.status_code == 200
        text = response.content.decode()
        assert "This text cannot be shown." in text and message in text
    assert Issue.objects.get().body == body  # the author's text is kept to fix


def test_html_stored_before_the_limits_is_never_handed_to_the_css_inliner(
    editor_client,
):
    # An old row: HTML rendered before the limits existed, 50,000 <div> deep.
    issue = IssueFactory(body="Fine.")
    deep = "<div>" * 50_000 + "x" + "</div>" * 50_000
    Issue.objects.filter(pk=issue.pk).update(body_html=deep, free_html=deep)

    for name in ("admin:sending_preview", "admin:sending_preview_raw"):
        response = editor_client.get(reverse(name, args=[issue.pk]))
        assert response.status_code == 200
    assert "HTML nested 50,000 levels deep" in response.content.decode()


# --- The renderer, for bodies that bypass every form ----------------------------------
@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_the_renderer_shows_a_notice_instead_of_a_hostile_body(name):
    body, message = HOSTILE_BODIES[name]

    rendered = render_issue_body(body + "\n\n<!-- paywall -->\n\n[[arxiv:2201.03545]]")

    assert rendered.body_html == rendered.free_html
    assert 'class="content-refused"' in rendered.body_html
    assert message in rendered.body_html
    assert rendered.paid_html == "" and rendered.references == []
    assert message in render_markdown(body)


def test_an_issue_saved_in_code_with_a_hostile_body_is_emailed_as_the_notice():
    issue = IssueFactory(body=NESTED_DIVS)

    prepared = render_segment(issue=issue, segment="free")

    assert "This text cannot be shown." in prepared.html
    assert "<div><div>" not in prepared.html


def test_html_that_nests_deep_only_once_parsed_is_refused_before_the_sanitizer():
    # Each "</div>" sits in an attribute: the Markdown scan counts it as closing,
    # an HTML parser does not. The gate on the parsed HTML reads it as one does.
    body = '<div title="</div>">' * 2_000
    check_markdown(body)  # passes the first gate

    html = render_markdown(body)

    assert "This text makes HTML nested" in html
    assert html.count("<div") == 1  # the notice itself


def test_check_markdown_names_the_deepest_line_of_unclosed_html():
    body = "Fine.\n\n" + "<section>\n" * 45

    with pytest.raises(ContentTooLarge) as refused:
        check_markdown(body)

    # The deepest point, where the author has most to close.
    assert refused.value.line == 47
    assert "nested 45 levels deep at line 47" in refused.value.message


# --- Decompression bombs --------------------------------------------------------------
@cache
def _png_claiming(width: int, height: int) -> bytes:
    """Return a PNG of a few kilobytes that decodes to width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    # One bit per pixel, every row zero: it compresses a thousandfold.
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor, idat = zlib.compressobj(9), io.BytesIO()
    for _ in range(height):
        idat.write(compressor.compress(row))
    idat.write(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", idat.getvalue())
        + chunk(b"IEND", b"")
    )


# Past twice Pillow's limit it raises; between once and twice, it only warns.
BOMBS = {"30000x30000": (30_000, 30_000), "8000x8000": (8_000, 8_000)}


@pytest.mark.parametrize("size", BOMBS)
def test_an_editor_upload_of_a_decompression_bomb_gets_a_400(
    editor_client, media, size
):
    png = _png_claiming(*BOMBS[size])
    assert len(png) < 200_000

    response = editor_client.post(
        "/markdownx/upload/",
        {"image": SimpleUploadedFile("bomb.png", png, content_type="image/png")},
    )

    assert response.status_code == 400
    (message,) = response.json()["image"]
    assert "more than 50 million pixels" in message and "Resize it" in message
    assert not media.exists() or not any(media.rglob("*.png"))


@pytest.mark.parametrize("size", BOMBS)
def test_a_decompression_bomb_as_cover_image_is_a_form_error(
    editor_client, media, size
):
    bomb = SimpleUploadedFile(
        "cover.png", _png_claiming(*BOMBS[size]), content_type="image/png"
    )

    response = editor_client.post(
        reverse("admin:issues_issue_add"), issue_admin_form(cover_image=bomb)
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["cover_image"]
    assert "more than 50 million pixels" in errors[0]
    assert not Issue.objects.exists()
    assert not media.exists() or not any(media.rglob("*.png"))


def test_pillow_is_told_the_limit_so_nothing_else_decodes_a_bomb():
    from PIL import Image

    # 144 million pixels: under twice Pillow's own default (89 million), where
    # it would only warn, but over twice Quire's 50 million.
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(_png_claiming(12_000, 12_000)))
