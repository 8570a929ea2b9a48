"""Every page a reader can reach by following links answers, and no link is broken."""

import re
import urllib.error
import urllib.request
from collections import deque
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from issues.demo import load_demo
from tests.support.links import html_links

pytestmark = pytest.mark.django_db(transaction=True)

# Where a reader's crawl starts: the pages the site is entered by.
START = ["/", "/archive/", "/papers/", "/feed/", "/feed/atom/", "/sitemap.xml"]
# Not the reader's site: the admin and the editor's endpoints ask for staff.
NOT_CRAWLED = ("/admin/", "/markdownx/")
XML_LINKS = re.compile(r"<(?:loc|link|guid|id)[^>]*>\s*(https?://[^<\s]+)\s*<")
XML_HREFS = re.compile(r'<link[^>]*\shref="([^"]+)"')


def _links_in(body: str, content_type: str) -> list[str]:
    if "xml" in content_type:
        return XML_LINKS.findall(body) + XML_HREFS.findall(body)
    if "html" not in content_type:
        return []
    return html_links(body)


def _fetch(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            kind = response.headers.get("Content-Type", "")
            body = response.read().decode("utf-8", errors="replace")
            return response.status, kind, body
    except urllib.error.HTTPError as error:
        return error.code, "", ""


def test_every_link_on_the_reader_site_answers(live_server, settings):
    settings.SITE_URL = live_server.url
    load_demo()
    origin = urlsplit(live_server.url).netloc
    queue = deque(urljoin(live_server.url, path) for path in START)
    seen = set(queue)
    broken: dict[str, tuple[int, str]] = {}
    found_on: dict[str, str] = {}
    while queue:
        url = queue.popleft()
        status, kind, body = _fetch(url)
        if status != 200:
            broken[url] = (status, found_on.get(url, "start"))
            continue
        for link in _links_in(body, kind):
            target, _fragment = urldefrag(urljoin(url, link))
            parts = urlsplit(target)
            if parts.scheme not in ("http", "https") or parts.netloc != origin:
                continue
            if parts.path.startswith(NOT_CRAWLED) or target in seen:
                continue
            seen.add(target)
            found_on[target] = url
            queue.append(target)

    assert not broken, "\n".join(
        f"{url} answered {status} (linked from {page})"
        for url, (status, page) in sorted(broken.items())
    )
    paths = {urlsplit(url).path for url in seen}
    # The crawl reached every kind of reader page through links alone.
    for expected in ("/issues/", "/papers/top/", "/tags/", "/static/", "bibtex"):
        assert any(expected in path for path in paths), expected
    assert len(seen) > 40
