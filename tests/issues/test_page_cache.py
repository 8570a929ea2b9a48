"""Issue pages rendered once for anonymous readers, never shared with others."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from issues import services
from newsletter import services as content_version
from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def issue(db):
    return IssueFactory(
        slug="cached", published=True, title="Cached issue",
        body="Open words\n\n<!-- paywall -->\n\nSupporter words",
    )  # fmt: skip


def test_a_second_anonymous_reader_gets_the_page_without_a_query(
    issue, django_assert_num_queries
):
    Client().get(issue.get_absolute_url())
    with django_assert_num_queries(0):
        response = Client().get(issue.get_absolute_url())
    assert "Open words" in response.content.decode()


def test_after_the_recheck_interval_one_query_confirms_the_page(
    issue, settings, django_assert_num_queries
):
    settings.QUIRE_PAGE_RECHECK_SECONDS = 0
    Client().get(issue.get_absolute_url())
    with django_assert_num_queries(1):
        response = Client().get(issue.get_absolute_url())
    assert "Open words" in response.content.decode()


def test_a_change_made_by_another_process_shows_after_the_recheck(issue, settings):
    from issues.models import Issue

    Client().get(issue.get_absolute_url())
    # Another server process unpublished it: the version went up in its
    # transaction, and this process was not told.
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.DRAFT)
    content_version.bump_content_version()
    assert Client().get(issue.get_absolute_url()).status_code == 200
    settings.QUIRE_PAGE_RECHECK_SECONDS = 0
    assert Client().get(issue.get_absolute_url()).status_code == 404


def test_each_reader_gets_a_working_csrf_token_from_a_cached_page(issue):
    Client().get(issue.get_absolute_url())
    reader = Client(enforce_csrf_checks=True)
    # The reader's CSRF cookie, as forms.js or an earlier form left it.
    reader.get(reverse("csrf_token"))
    page = reader.get(issue.get_absolute_url()).content.decode()
    token = TOKEN_RE.search(page).group(1)
    assert "quire-csrf-token-placeholder" not in page
    response = reader.post(
        reverse("subscribers:subscribe"),
        {"email": "new@example.org", "csrfmiddlewaretoken": token},
    )
    assert response.status_code != 403


def test_an_edit_shows_at_once(issue, django_capture_on_commit_callbacks):
    Client().get(issue.get_absolute_url())
    issue.body = "Rewritten words"
    with django_capture_on_commit_callbacks(execute=True):
        issue.save()
    assert "Rewritten words" in Client().get(issue.get_absolute_url()).content.decode()


def test_staff_never_get_the_anonymous_page_and_readers_never_get_theirs(
    issue, staff_user
):
    staff = Client()
    staff.force_login(staff_user)
    assert "Supporter words" in staff.get(issue.get_absolute_url()).content.decode()
    anonymous = Client().get(issue.get_absolute_url()).content.decode()
    assert "Supporter words" not in anonymous
    assert "Supporter words" in staff.get(issue.get_absolute_url()).content.decode()


def test_unpublishing_hides_a_cached_page_at_once(
    issue, django_capture_on_commit_callbacks
):
    Client().get(issue.get_absolute_url())
    issue.status = issue.Status.DRAFT
    with django_capture_on_commit_callbacks(execute=True):
        issue.save()
    assert Client().get(issue.get_absolute_url()).status_code == 404


def test_the_cache_can_be_turned_off(issue, settings, django_assert_max_num_queries):
    settings.QUIRE_PAGE_CACHE_SECONDS = 0
    Client().get(issue.get_absolute_url())
    from issues.pagecache import pages

    assert pages.get(issue.slug) is None


def test_browsers_that_accept_gzip_get_the_cached_page_compressed(issue):
    import gzip

    plain = Client().get(issue.get_absolute_url()).content
    reader = Client()
    reader.get(reverse("csrf_token"))
    response = reader.get(issue.get_absolute_url(), HTTP_ACCEPT_ENCODING="gzip, br")
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    body = gzip.decompress(response.content)  # checks the CRC and the length
    assert len(response.content) < len(body)
    token = TOKEN_RE.search(body.decode()).group(1)
    assert token != pagecache_placeholder()
    empty = 'name="csrfmiddlewaretoken" value=""'
    assert empty in plain.decode()  # no cookie, no token: see test_shared_pages
    assert TOKEN_RE.sub("", body.decode()) == plain.decode().replace(empty, "")


def test_a_gzipped_page_carries_a_working_csrf_token(issue):
    import gzip

    Client().get(issue.get_absolute_url())
    reader = Client(enforce_csrf_checks=True)
    reader.get(reverse("csrf_token"))
    response = reader.get(issue.get_absolute_url(), HTTP_ACCEPT_ENCODING="gzip")
    token = TOKEN_RE.search(gzip.decompress(response.content).decode()).group(1)
    response = reader.post(
        reverse("subscribers:subscribe"),
        {"email": "gz@example.org", "csrfmiddlewaretoken": token},
    )
    assert response.status_code != 403


def test_gzip_is_not_sent_to_clients_that_refuse_it(issue):
    response = Client().get(issue.get_absolute_url(), HTTP_ACCEPT_ENCODING="gzip;q=0")
    assert "Content-Encoding" not in response
    assert b"Open words" in response.content


def pagecache_placeholder() -> str:
    from issues.pagecache import CSRF_PLACEHOLDER

    return CSRF_PLACEHOLDER


def test_editing_a_cited_paper_shows_on_a_cached_page_at_once(
    db, django_capture_on_commit_callbacks
):
    from tests.factories.issues import PaperFactory

    paper = PaperFactory(title="Old paper title", arxiv_id="2201.03545")
    issue = IssueFactory(slug="cites", published=True, body="[[arxiv:2201.03545]]")
    assert "Old paper title" in Client().get(issue.get_absolute_url()).content.decode()
    paper.title = "New paper title"
    with django_capture_on_commit_callbacks(execute=True):
        paper.save()
        services.rerender_citing_issues(paper=paper)
    page = Client().get(issue.get_absolute_url()).content.decode()
    assert "New paper title" in page
    assert "Old paper title" not in page
