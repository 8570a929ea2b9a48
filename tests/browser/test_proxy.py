"""docker-compose.yml's nginx, run for real in front of Quire (nginx must be installed).

The configuration is the one in the compose file, with only its addresses changed:
where it listens, where gunicorn is, where the media volume is mounted.
"""

import io
import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from PIL import Image

from subscribers.models import Subscriber
from tests.conftest import wait_for
from tests.factories.issues import IssueFactory
from tests.support.nginx import Nginx, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _compose_nginx_config() -> str:
    compose = yaml.safe_load((settings.BASE_DIR / "docker-compose.yml").read_text())
    return compose["configs"]["nginx"]["content"]


def _proxy(*, upstream: str, media_parent: Path, folder: Path) -> Nginx:
    port = free_port()
    config = _compose_nginx_config()
    # No TLS proxy in front: the test's browser is a reader on the internet.
    config = re.sub(r"\$\{QUIRE_FRONT_PROXIES:-[^}]*\}", "192.0.2.1", config)
    config = config.replace("$$", "$")
    assert "${" not in config
    replacements = {
        "http://web:8000": upstream,
        "root /srv;": f"root {media_parent};",
        "listen 80 ": f"listen 127.0.0.1:{port} ",
        "listen 127.0.0.1:8081;": f"listen 127.0.0.1:{free_port()};",
    }
    for old, new in replacements.items():
        assert old in config, old
        config = config.replace(old, new)
    return Nginx(folder=folder, config=config, port=port)


@pytest.fixture
def proxy(live_server, settings, tmp_path):
    # As in docker-compose.yml: the proxy serves /media/, Django does not.
    settings.QUIRE_SERVE_MEDIA = False
    settings.MEDIA_ROOT = tmp_path / "srv" / "media"
    settings.MEDIA_ROOT.mkdir(parents=True)
    (tmp_path / "nginx").mkdir()
    # An address, not a name: the compose file's resolver is Docker's own.
    port = live_server.url.rsplit(":", 1)[1]
    running = _proxy(
        upstream=f"http://127.0.0.1:{port}",
        media_parent=tmp_path / "srv",
        folder=tmp_path / "nginx",
    )
    running.wait()
    yield running
    running.stop()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_issue_image_shows_through_the_proxy(proxy, page):
    (settings.MEDIA_ROOT / "markdownx").mkdir()
    (settings.MEDIA_ROOT / "markdownx" / "chart.png").write_bytes(_png())
    issue = IssueFactory(
        published=True, body="A chart:\n\n![chart](/media/markdownx/chart.png)\n"
    )

    page.goto(proxy.url + issue.get_absolute_url())
    image = page.get_by_role("img", name="chart")

    wait_for(lambda: image.evaluate("i => i.complete && i.naturalWidth") == 40)
    answer = page.request.get(proxy.url + "/media/markdownx/chart.png")
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "max-age=" in answer.headers["cache-control"]


def test_a_page_placed_in_media_is_only_a_download_through_the_proxy(proxy, page):
    (settings.MEDIA_ROOT / "page.html").write_text("<script>alert(1)</script>")
    (settings.MEDIA_ROOT / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    )

    for name in ("page.html", "logo.svg"):
        answer = page.request.get(f"{proxy.url}/media/{name}")
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"] == "attachment"
        assert answer.headers["x-content-type-options"] == "nosniff"
    page.goto(proxy.url + "/")
    with page.expect_download() as download:
        page.evaluate("url => { location.href = url; }", "/media/page.html")
    assert download.value.suggested_filename == "page.html"


def test_paths_out_of_the_media_volume_are_not_served_by_the_proxy(proxy, page):
    (settings.MEDIA_ROOT.parent / "secret.txt").write_text("the database password")
    (settings.MEDIA_ROOT / "innocent.png").symlink_to(
        settings.MEDIA_ROOT.parent / "secret.txt"
    )

    # Climbing out is not found (the path is resolved first); the symlink out of
    # the volume is refused (nginx's disable_symlinks).
    for path, status in (("/media/../secret.txt", 404),
                         ("/media/%2e%2e/secret.txt", 404),
                         ("/media/innocent.png", 403)):  # fmt: skip
        answer = page.request.get(proxy.url + path)
        assert answer.status == status, path
        assert "database password" not in answer.text(), path


def test_a_reader_behind_the_proxy_cannot_choose_the_address_quire_records(proxy, page):
    page.set_extra_http_headers({"X-Forwarded-For": "203.0.113.66"})
    page.goto(proxy.url + "/subscribe/")
    page.get_by_label("Get new issues by email").first.fill("new@example.org")
    page.get_by_role("button", name="Subscribe").first.click()

    subscriber = wait_for(
        lambda: Subscriber.objects.filter(email="new@example.org").first(),
        timeout=10,
        message="the subscription",
    )
    assert subscriber.consent_ip == "127.0.0.1"
