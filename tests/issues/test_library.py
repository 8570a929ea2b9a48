"""A reader's paper library: save from a page, see, remove, export, and privacy."""

import re

import pytest
from django.test import Client
from pybtex.database import parse_string

from issues import library
from issues.models import SavedPaper
from subscribers import services as subscriber_services
from subscribers.sessions import SESSION_KEY
from tests.factories.issues import IssueFactory, PaperFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SAVE_URL = "/account/papers/save/"
REMOVE_URL = "/account/papers/remove/"


def signed_in(subscriber) -> Client:
    """Return a browser-like client (CSRF enforced) signed in as the subscriber."""
    client = Client(enforce_csrf_checks=True)
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    return client


def token(client: Client, url: str) -> str:
    return TOKEN_RE.search(client.get(url).content.decode()).group(1)


@pytest.fixture
def paper(db):
    return PaperFactory(slug="convnext", title="A ConvNet for the 2020s",
                        authors=["Zhuang Liu", "Hanzi Mao"], year=2022,
                        arxiv_id="2201.03545")  # fmt: skip


@pytest.fixture
def issue(paper):
    return IssueFactory(slug="vision", published=True,
                        body="Read [[paper:convnext]].")  # fmt: skip


@pytest.fixture
def ada(db):
    return SubscriberFactory(email="ada@example.org")


def test_a_subscriber_saves_a_paper_from_an_issue_and_finds_it_on_their_account(
    issue, paper, ada
):
    client = signed_in(ada)
    page = client.get(issue.get_absolute_url()).content.decode()
    assert f'action="{SAVE_URL}"' in page
    assert "Sign in to save" not in page

    response = client.post(SAVE_URL, {
        "paper": paper.slug, "next": issue.get_absolute_url(),
        "csrfmiddlewaretoken": TOKEN_RE.search(page).group(1),
    })  # fmt: skip

    assert response.status_code == 302
    assert response["Location"] == issue.get_absolute_url()
    assert list(library.saved_papers(ada)) == [paper]
    page = client.get(issue.get_absolute_url()).content.decode()
    assert "Saved to your papers" in page
    assert f'action="{REMOVE_URL}"' in page
    account = client.get("/account/").content.decode()
    assert 'id="your-papers"' in account
    assert "A ConvNet for the 2020s" in account
    assert "Export your papers as BibTeX" in account


def test_a_subscriber_saves_from_a_paper_page(paper, ada):
    client = signed_in(ada)
    csrf = token(client, paper.get_absolute_url())
    client.post(SAVE_URL, {"paper": paper.slug, "csrfmiddlewaretoken": csrf})
    assert SavedPaper.objects.filter(subscriber=ada, paper=paper).exists()
    assert (
        "Saved to your papers" in client.get(paper.get_absolute_url()).content.decode()
    )


def test_an_empty_library_says_how_to_fill_it(ada):
    client = signed_in(ada)
    for url in ("/account/", "/account/papers/"):
        html = client.get(url).content.decode()
        assert "You have saved no papers yet." in html
        assert "Export your papers" not in html


def test_saving_twice_keeps_one_and_removing_takes_it_out(paper, ada):
    client = signed_in(ada)
    csrf = token(client, "/account/")
    for _ in range(2):
        client.post(SAVE_URL, {"paper": paper.slug, "csrfmiddlewaretoken": csrf})
    assert SavedPaper.objects.filter(subscriber=ada).count() == 1

    response = client.post(
        REMOVE_URL, {"paper": paper.slug, "next": "/account/",
                     "csrfmiddlewaretoken": csrf},
    )  # fmt: skip
    assert response["Location"] == "/account/"
    assert not SavedPaper.objects.exists()
    assert "You have saved no papers yet." in client.get("/account/").content.decode()


def test_the_export_is_bibtex_of_the_saved_papers_alone(paper, ada):
    other = PaperFactory(title="Unsaved paper")
    second = PaperFactory(slug="vit", title="An Image is Worth 16x16 Words",
                          authors=["Alexey Dosovitskiy"], year=2020,
                          arxiv_id="2010.11929")  # fmt: skip
    library.save_paper(subscriber=ada, paper=paper)
    library.save_paper(subscriber=ada, paper=second)

    response = signed_in(ada).get("/account/papers/papers.bib")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/x-bibtex")
    assert "private" in response["Cache-Control"]
    entries = parse_string(response.content.decode(), "bibtex").entries
    titles = {entry.fields["title"] for entry in entries.values()}
    assert titles == {"A ConvNet for the 2020s", "An Image is Worth 16x16 Words"}
    assert other.title not in response.content.decode()


def test_deleting_a_paper_or_a_subscriber_deletes_their_saved_rows(paper, ada):
    library.save_paper(subscriber=ada, paper=paper)
    bob = SubscriberFactory()
    library.save_paper(subscriber=bob, paper=paper)
    paper.delete()
    assert not SavedPaper.objects.exists()

    kept = PaperFactory()
    library.save_paper(subscriber=ada, paper=kept)
    ada.delete()
    assert not SavedPaper.objects.exists()


def test_the_data_export_lists_the_saved_papers(paper, ada):
    saved = library.save_paper(subscriber=ada, paper=paper)

    data = subscriber_services.export_subscriber_data(subscriber=ada)

    assert data["saved_papers"] == [{
        "title": "A ConvNet for the 2020s", "slug": "convnext", "doi": "",
        "arxiv_id": "2201.03545", "url": "", "saved_at": saved.saved_at.isoformat(),
    }]  # fmt: skip


def test_erasing_a_subscriber_erases_their_library_and_no_one_elses(paper, ada):
    bob = SubscriberFactory()
    library.save_paper(subscriber=ada, paper=paper)
    library.save_paper(subscriber=bob, paper=paper)

    subscriber_services.delete_subscriber(subscriber=ada)

    assert list(SavedPaper.objects.values_list("subscriber_id", flat=True)) == [bob.pk]


def test_the_anonymous_shared_page_never_shows_a_readers_saved_state(issue, paper, ada):
    # Cached for everyone first, then the subscriber saves, then anonymous again.
    first = Client().get(issue.get_absolute_url()).content.decode()
    client = signed_in(ada)
    client.post(
        SAVE_URL,
        {"paper": paper.slug, "csrfmiddlewaretoken": token(client, "/account/")},
    )
    mine = client.get(issue.get_absolute_url())
    theirs = Client().get(issue.get_absolute_url()).content.decode()

    assert "Saved to your papers" in mine.content.decode()
    assert "private" in mine["Cache-Control"]
    for html in (first, theirs):
        assert "Sign in to save" in html
        assert "Saved to your papers" not in html
        assert SAVE_URL not in html and REMOVE_URL not in html
    assert theirs == first


def test_the_shared_page_rendered_while_a_reader_has_saved_shows_nothing_of_it(
    issue, paper, ada
):
    library.save_paper(subscriber=ada, paper=paper)
    signed_in(ada).get(issue.get_absolute_url())  # the reader's own render
    html = Client().get(issue.get_absolute_url()).content.decode()
    assert "Saved to your papers" not in html and "Sign in to save" in html


def test_a_saved_paper_changes_the_issue_pages_etag(issue, paper, ada):
    client = signed_in(ada)
    before = client.get(issue.get_absolute_url())
    library.save_paper(subscriber=ada, paper=paper)

    again = client.get(issue.get_absolute_url(), HTTP_IF_NONE_MATCH=before["ETag"])

    assert again.status_code == 200
    assert "Saved to your papers" in again.content.decode()
    unchanged = client.get(issue.get_absolute_url(), HTTP_IF_NONE_MATCH=again["ETag"])
    assert unchanged.status_code == 304
