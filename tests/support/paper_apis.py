"""arXiv's and Crossref's APIs, answered by a pytest-httpserver as they answer.

The answers are files under tests/fixtures/papers/, as the real APIs send them.
"""

from pathlib import Path

import pytest
from django.core.cache import cache

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "papers"
ARXIV_PATH = "/api/query"
ATOM = "application/atom+xml; charset=utf-8"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def paper_apis(settings, httpserver):
    """Point Quire's arXiv and Crossref addresses at the local server.

    No pace between requests here; the tests of the pace set their own. The cache
    starts empty: the server's address is the same for every test, and so would be
    the answers and pace kept under it.
    """
    cache.clear()
    settings.ARXIV_API_URL = httpserver.url_for(ARXIV_PATH)
    settings.CROSSREF_API_URL = httpserver.url_for("/")
    settings.CROSSREF_MAILTO = "author@example.org"
    settings.ARXIV_MIN_INTERVAL = 0.0
    settings.CROSSREF_MIN_INTERVAL = 0.0
    return httpserver


def answer_arxiv(
    server, fixture: str, *, ids: list[str], status: int = 200, headers=None
):
    """Answer arXiv's query for exactly these ids with the fixture."""
    server.expect_request(
        ARXIV_PATH,
        query_string={"id_list": ",".join(ids), "max_results": str(len(ids))},
    ).respond_with_data(
        fixture_bytes(fixture), status=status, content_type=ATOM, headers=headers
    )


def answer_crossref(server, doi: str, fixture: str, *, status: int = 200, headers=None):
    """Answer Crossref's /works/<doi> with the fixture."""
    server.expect_request(f"/works/{doi}").respond_with_data(
        fixture_bytes(fixture),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def arxiv_requests(server) -> list:
    """Return the requests the server had at arXiv's address."""
    return [request for request, _ in server.log if request.path == ARXIV_PATH]
