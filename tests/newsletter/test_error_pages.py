"""Branded error pages in production mode (DEBUG off)."""

import re

import pytest
from django.test import Client

from tests.factories.issues import IssueFactory


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    return settings


def _assert_branded(page: str) -> None:
    assert '<link rel="stylesheet" href="/static/css/site.css">' in page
    assert '<header class="site-header">' in page
    assert re.search(r'<form class="search-form" method="get" action="/search/"', page)
    for href in ('href="/"', 'href="/archive/"', 'href="/papers/"'):
        assert href in page


@pytest.mark.django_db
def test_a_missing_page_answers_404_with_the_site_around_it(production):
    IssueFactory(published=True, slug="real")

    for url in ("/no-such-page/", "/issues/no-such-issue/", "/papers/nope/"):
        response = Client().get(url)
        page = response.content.decode()
        assert response.status_code == 404, url
        assert "<h1>Page not found</h1>" in page
        _assert_branded(page)
        assert "Quire" in re.search(r"<title>(.*)</title>", page).group(1)


# No django_db mark: every query fails, as it does when the database is down.
def test_a_server_error_answers_500_even_with_the_database_down(production):
    client = Client(raise_request_exception=False)

    response = client.get("/")

    page = response.content.decode()
    assert response.status_code == 500
    assert "<title>Something went wrong</title>" in page
    assert "<h1>Something went wrong</h1>" in page
    _assert_branded(page)
