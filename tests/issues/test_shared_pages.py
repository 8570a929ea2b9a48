"""Every anonymous reader page from the page cache: served without a query, kept
by one content version, never shared with members or staff, with headers a CDN
may act on and no reader's CSRF token or cookie in what it may keep."""

import gzip
import re
from datetime import timedelta

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from issues import pagecache
from issues.models import Citation, Issue, Paper
from issues.sending import services as sending
from newsletter.models import Publication
from subscribers.sessions import SESSION_KEY
from tests.conftest import wait_for
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory, PaperFactory, TagFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]*)"')


@pytest.fixture
def site(db):
    tag = TagFactory(name="Vision", slug="vision")
    paper = PaperFactory(
        slug="convnext", arxiv_id="2201.03545", title="A ConvNet for the 2020s",
        year=2022,
    )  # fmt: skip
    paper.tags.set([tag])
    issue = IssueFactory(
        slug="shared", published=True, title="Shared issue",
        body="Open words [[arxiv:2201.03545]]\n\n<!-- paywall -->\n\nSupporter words",
    )  # fmt: skip
    issue.tags.set([tag])
    Citation.objects.filter(issue=issue).update(rank=1)
    draft = IssueFactory(slug="draft", title="Secret draft", body="Draft words")
    draft.tags.set([tag])
    return {"tag": tag, "paper": paper, "issue": issue, "draft": draft}


READER_URLS = [
    "/", "/archive/", "/archive/?page=1", "/papers/", "/papers/?year=2022",
    "/papers/?tag=vision", "/papers/convnext/", "/papers/convnext/bibtex",
    "/papers/top/2022/", "/tags/vision/", "/issues/shared/",
    "/issues/shared/bibtex", "/feed/", "/feed/atom/", "/sitemap.xml",
    "/search/?q=open",
]  # fmt: skip


def text(response) -> str:
    if response.get("Content-Encoding") == "gzip":
        return gzip.decompress(response.content).decode()
    return response.content.decode()


def subscriber_client(*, paid: bool = False) -> Client:
    subscriber = SubscriberFactory()
    if paid:
        MembershipFactory(subscriber=subscriber, complimentary=True)
    client = Client()
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    return client


@pytest.mark.parametrize("url", READER_URLS)
def test_a_second_anonymous_reader_gets_every_page_without_a_query(
    site, url, django_assert_num_queries
):
    first = Client().get(url)
    assert first.status_code == 200, url
    with django_assert_num_queries(0):
        again = Client().get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert again.status_code == 200
    assert text(again) == text(first)
    for header in ("Content-Type", "Content-Disposition"):
        assert again.get(header) == first.get(header)


@pytest.mark.parametrize("url", READER_URLS)
def test_a_first_visit_may_be_kept_by_a_cdn_and_carries_no_token_or_cookie(site, url):
    Client().get(url)
    response = Client().get(url)
    cache_control = response["Cache-Control"]
    for part in ("public", "max-age=0", "s-maxage=10", "stale-while-revalidate=30"):
        assert part in cache_control, (url, cache_control)
    assert {"Cookie", "Accept-Encoding"} <= {
        v.strip() for v in response["Vary"].split(",")
    }
    assert not response.cookies, url
    assert "private" not in cache_control
    assert all(token == "" for token in TOKEN_RE.findall(text(response)))
    assert pagecache.CSRF_PLACEHOLDER not in text(response)


def test_the_cdn_lifetimes_follow_the_settings(site, settings):
    settings.QUIRE_CDN_SECONDS = 300
    settings.QUIRE_CDN_STALE_SECONDS = 600
    cache_control = Client().get("/")["Cache-Control"]
    assert "s-maxage=300" in cache_control
    assert "stale-while-revalidate=600" in cache_control


def test_a_reader_with_a_csrf_cookie_gets_their_own_token_never_for_a_shared_cache(
    site,
):
    Client().get("/")
    reader = Client(enforce_csrf_checks=True)
    fetched = reader.get(reverse("csrf_token"))
    assert {"private", "no-store"} <= {
        part.strip() for part in fetched["Cache-Control"].split(",")
    }
    page = reader.get("/")
    assert "private" in page["Cache-Control"] and "public" not in page["Cache-Control"]
    [token] = TOKEN_RE.findall(text(page))
    assert token
    response = reader.post(
        reverse("subscribers:subscribe"),
        {"email": "reader@example.org", "csrfmiddlewaretoken": token, "page": "/"},
    )
    assert response.status_code == 200
    # Another reader's copy of the same cached page has another token.
    other = Client()
    other.get(reverse("csrf_token"))
    [other_token] = TOKEN_RE.findall(text(other.get("/")))
    assert other_token and other_token != token


def test_the_token_from_csrf_makes_a_form_of_a_shared_page_work(site):
    """What forms.js does when a page came without a token."""
    reader = Client(enforce_csrf_checks=True)
    page = text(reader.get("/"))
    assert TOKEN_RE.findall(page) == [""]
    refused = reader.post(reverse("subscribers:subscribe"), {"email": "a@example.org"})
    assert refused.status_code == 403
    token = reader.get(reverse("csrf_token")).json()["token"]
    response = reader.post(
        reverse("subscribers:subscribe"),
        {"email": "a@example.org", "csrfmiddlewaretoken": token, "page": "/"},
    )
    assert response.status_code == 200


def test_pages_without_a_form_stay_public_for_readers_with_a_cookie(site):
    reader = Client()
    reader.get(reverse("csrf_token"))
    for url in ("/feed/", "/sitemap.xml", "/papers/convnext/bibtex", "/archive/"):
        response = reader.get(url)
        assert "public" in response["Cache-Control"], url
        assert not response.cookies, url


def test_a_conditional_request_gets_a_304_from_the_cached_page(site):
    etag = Client().get("/papers/")["ETag"]
    response = Client().get("/papers/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert "public" in response["Cache-Control"]
    assert response["ETag"] == etag


def test_query_parameters_the_view_does_not_read_share_one_entry(site):
    pagecache.pages.clear()
    for n in range(5):
        assert Client().get(f"/archive/?utm_source={n}").status_code == 200
    assert len(pagecache.pages) == 1


# --- Never shared: members, staff, signed-in subscribers ------------------------------
@pytest.mark.parametrize("url", ["/archive/", "/tags/vision/"])
def test_a_staff_page_never_reaches_anonymous_readers_nor_the_reverse(
    site, url, staff_user
):
    staff = Client()
    staff.force_login(staff_user)
    anonymous_before = text(Client().get(url))
    staff_page = staff.get(url)
    assert "Secret draft" in text(staff_page), url
    assert "private" in staff_page["Cache-Control"]
    anonymous_after = Client().get(url)
    assert "Secret draft" not in anonymous_before
    assert "Secret draft" not in text(anonymous_after)
    assert "Secret draft" in text(staff.get(url))


def test_a_members_page_never_reaches_anonymous_readers_nor_the_reverse(site):
    member = subscriber_client(paid=True)
    url = "/issues/shared/"
    assert "Supporter words" not in text(Client().get(url))
    page = member.get(url)
    assert "Supporter words" in text(page)
    assert "private" in page["Cache-Control"]
    assert "Supporter words" not in text(Client().get(url))
    assert "Supporter words" in text(member.get(url))


@pytest.mark.parametrize("url", ["/", "/archive/", "/issues/shared/", "/papers/"])
def test_a_signed_in_subscribers_header_never_reaches_anonymous_readers(site, url):
    Client().get(url)
    subscriber = subscriber_client()
    assert ">Account</a>" in text(subscriber.get(url)), url
    anonymous = text(Client().get(url))
    assert ">Account</a>" not in anonymous and ">Sign in</a>" in anonymous
    assert ">Account</a>" in text(subscriber.get(url))


def test_a_page_rendered_with_a_real_token_is_never_kept(site):
    """A view that calls get_token itself shows one reader's token: not stored."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse
    from django.middleware.csrf import get_token

    from issues.shared_pages import shared_page

    @shared_page()
    def view(request):
        return HttpResponse(f"token {get_token(request)}")

    request = RequestFactory().get("/tokened/")
    request.user = AnonymousUser()
    response = view(request)
    assert "private" in response["Cache-Control"]
    assert pagecache.pages.get("/tokened/?") is None


# --- Changes: each one shows at the next request --------------------------------------
def _edit(site):
    site["issue"].body = "Rewritten words"
    site["issue"].save()
    return "/issues/shared/", "Rewritten words", "Open words"


def _unpublish(site):
    sending.unpublish_issue(issue=site["issue"])
    return "/archive/", None, "Shared issue"


def _delete(site):
    site["issue"].delete()
    return "/tags/vision/", None, "Shared issue"


def _paywall(site):
    site["issue"].access = Issue.Access.PAID
    site["issue"].body = "Now all for supporters"
    site["issue"].save()
    return "/feed/", None, "Open words"


def _paper_edit(site):
    paper = Paper.objects.get(slug="convnext")
    paper.title = "A renamed paper"
    paper.save()
    return "/papers/", "A renamed paper", "A ConvNet for the 2020s"


def _tag_edit(site):
    tag = site["tag"]
    tag.name = "Computer vision"
    tag.save()
    return "/issues/shared/", "Computer vision", ">Vision<"


def _publication_edit(site):
    publication = Publication.load()
    publication.name = "The Renamed Review"
    publication.save()
    return "/", "The Renamed Review", None


CHANGES = [_edit, _unpublish, _delete, _paywall, _paper_edit, _tag_edit,
           _publication_edit]  # fmt: skip


def _shows(url: str, present: str | None, absent: str | None) -> bool:
    page = text(Client().get(url))
    return (present is None or present in page) and (
        absent is None or absent not in page
    )


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.__name__.strip("_"))
def test_a_change_shows_at_once_in_this_process(
    site, change, django_capture_on_commit_callbacks
):
    for url in READER_URLS:
        Client().get(url)
    with django_capture_on_commit_callbacks(execute=True):
        url, present, absent = change(site)
    assert _shows(url, present, absent)


def test_an_issue_whose_publish_time_passes_appears_without_any_write(site, settings):
    settings.QUIRE_PAGE_RECHECK_SECONDS = 600
    IssueFactory(
        slug="soon", title="Out in a moment", status=Issue.Status.PUBLISHED,
        published_at=timezone.now() + timedelta(milliseconds=600),
    )  # fmt: skip
    assert "Out in a moment" not in text(Client().get("/"))
    assert "Out in a moment" not in text(Client().get("/archive/"))
    wait_for(
        lambda: "Out in a moment" in text(Client().get("/")),
        timeout=5, interval=0.05, message="the scheduled issue on the home page",
    )  # fmt: skip
    assert "Out in a moment" in text(Client().get("/feed/"))


# --- Search ---------------------------------------------------------------------------
def test_search_keeps_results_per_normalised_query(site, django_assert_num_queries):
    Client().get("/search/?q=open+words")
    with django_assert_num_queries(0):
        again = Client().get("/search/?q=++open+++words+")
    assert "Shared issue" in text(again)
    assert len(pagecache.search_pages) == 1
    assert pagecache.pages.get("/search/?q=open words") is None


def test_search_results_expire_after_their_own_short_time(site, settings):
    settings.QUIRE_SEARCH_CACHE_SECONDS = 0
    Client().get("/search/?q=open")
    assert pagecache.search_pages.get("/search/?q=open") is None


# --- Bounds ---------------------------------------------------------------------------
def _page(size: int) -> pagecache.Page:
    return pagecache.Page.cut(b"x" * size, version="1:", expires=float("inf"))


def test_the_cache_keeps_at_most_its_entries_least_recently_used_going_first():
    store = pagecache.PageCache(max_entries=2, max_bytes=10**9)
    store.put("a", _page(10))
    store.put("b", _page(10))
    store.get("a")
    store.put("c", _page(10))
    assert store.get("b") is None
    assert store.get("a") is not None and store.get("c") is not None


def test_the_cache_keeps_at_most_its_bytes():
    one = _page(100_000).size
    store = pagecache.PageCache(max_entries=100, max_bytes=3 * one)
    for n in range(10):
        store.put(str(n), _page(100_000))
    assert len(store) == 3
    assert store.bytes <= 3 * one
    store.put("huge", _page(1_000_000))
    assert store.get("huge") is None


def test_a_stale_version_is_dropped_on_lookup():
    store = pagecache.PageCache()
    store.put("a", _page(10))
    assert store.get("a", version="2:") is None
    assert len(store) == 0 and store.bytes == 0


def test_without_javascript_a_first_visit_subscribes_on_the_second_press(site):
    """The form of a shared page came without a token and forms.js did not run."""
    reader = Client(enforce_csrf_checks=True)
    assert TOKEN_RE.findall(text(reader.get("/"))) == [""]
    refused = reader.post(
        reverse("subscribers:subscribe"),
        {"email": "nojs@example.org", "name": "<b>No JS</b>", "page": "/",
         "csrfmiddlewaretoken": ""},
    )  # fmt: skip
    assert refused.status_code == 403
    page = text(refused)
    assert "Please send the form again" in page
    assert 'value="nojs@example.org"' in page
    assert "<b>No JS</b>" not in page  # what was sent is escaped
    assert "no-store" in refused["Cache-Control"]
    [token] = TOKEN_RE.findall(page)
    response = reader.post(
        reverse("subscribers:subscribe"),
        {"email": "nojs@example.org", "page": "/", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 200


def test_a_page_for_a_query_value_nobody_would_send_is_not_kept(site):
    """The papers page shows the tag it was asked for in its links: a page made
    for one value must never be served for another."""
    long_tag = "x" * 300
    response = Client().get(f"/papers/?tag={long_tag}")
    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    assert len(pagecache.pages) == 0
    Client().get("/papers/?tag=vision+")
    Client().get("/papers/?tag=vision")
    assert len(pagecache.pages) == 2  # the view reads them apart
