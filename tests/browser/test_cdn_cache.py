"""The README's nginx proxy_cache block, run for real in front of Quire (nginx must
be installed): it keeps the anonymous pages, and never hands one reader's CSRF
token, cookie or signed-in page to another."""

import re
import urllib.request

import pytest
from django.conf import settings

from subscribers.sessions import SESSION_KEY
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory
from tests.support.nginx import Nginx, free_port

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]*)"')


def _readme_block() -> str:
    readme = (settings.BASE_DIR / "README.md").read_text()
    [block] = re.findall(r"```nginx\n(.*?)```", readme, re.S)
    return block


@pytest.fixture
def cdn(live_server, tmp_path):
    port = free_port()
    config = _readme_block()
    replacements = {
        "/var/cache/nginx/quire": str(tmp_path / "cache"),
        "    # ... listen, server_name, TLS ...": f"    listen 127.0.0.1:{port};",
        "http://127.0.0.1:8000": live_server.url,
        "/srv/quire/static/": str(tmp_path / "static") + "/",
    }
    for old, new in replacements.items():
        assert old in config, old
        config = config.replace(old, new)
    running = Nginx(folder=tmp_path, config=config, port=port)
    try:
        running.wait()
        yield running.url
    finally:
        running.stop()


def _get(url: str, cookie: str = "") -> tuple[dict, str]:
    headers = {"Cookie": cookie} if cookie else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.headers, response.read().decode()


def test_nginx_keeps_anonymous_pages_and_no_readers_token_or_page(cdn):
    IssueFactory(slug="kept", published=True, title="Kept issue")
    home = cdn + "/"

    first_headers, first = _get(home)
    again_headers, again = _get(home)
    assert first_headers["X-Cache"] == "MISS"
    assert again_headers["X-Cache"] == "HIT"
    assert again == first and "Kept issue" in again
    assert TOKEN_RE.findall(again) == [""]  # a copy kept for all: no token
    assert first_headers.get("Set-Cookie") is None

    # /csrf/ is never kept: each reader gets their own token and cookie.
    one_headers, one = _get(cdn + "/csrf/")
    two_headers, two = _get(cdn + "/csrf/")
    assert two_headers["X-Cache"] != "HIT"
    assert one != two and "csrftoken=" in one_headers["Set-Cookie"]
    cookie = one_headers["Set-Cookie"].split(";")[0]

    # A reader with the cookie gets their own token, from Quire, never kept.
    mine_headers, mine = _get(home, cookie)
    assert mine_headers["X-Cache"] == "BYPASS"
    assert "private" in mine_headers["Cache-Control"]
    [token] = TOKEN_RE.findall(mine)
    assert token
    _, still_shared = _get(home)
    assert token not in still_shared and TOKEN_RE.findall(still_shared) == [""]

    # A signed-in subscriber's page (the header says "Account") stays theirs.
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = SubscriberFactory().pk
    session.create()
    signed_in = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
    theirs_headers, theirs = _get(home, signed_in)
    assert ">Account</a>" in theirs
    assert "private" in theirs_headers["Cache-Control"]
    anonymous_headers, anonymous = _get(home)
    assert anonymous_headers["X-Cache"] == "HIT"
    assert ">Account</a>" not in anonymous and ">Sign in</a>" in anonymous
