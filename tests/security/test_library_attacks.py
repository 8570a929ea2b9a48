"""The paper library attacked: outsiders, other subscribers, staff, CSRF, bad input."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from issues import library
from issues.models import SavedPaper
from subscribers.sessions import SESSION_KEY
from tests.factories.issues import PaperFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SAVE_URL = "/account/papers/save/"
REMOVE_URL = "/account/papers/remove/"


def signed_in(subscriber, *, csrf_checks: bool = True) -> Client:
    client = Client(enforce_csrf_checks=csrf_checks)
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    return client


def csrf(client: Client) -> str:
    return client.get("/csrf/", HTTP_ACCEPT="application/json").json()["token"]


@pytest.fixture
def paper(db):
    return PaperFactory(slug="convnext")


def test_an_outsider_with_a_valid_csrf_token_saves_nothing(paper):
    client = Client(enforce_csrf_checks=True)
    for url in (SAVE_URL, REMOVE_URL):
        response = client.post(url, {"paper": paper.slug,
                                     "csrfmiddlewaretoken": csrf(client)})  # fmt: skip
        assert response.status_code == 302
        assert response["Location"] == "/account/login/"
    assert not SavedPaper.objects.exists()
    assert Client().get("/account/papers/")["Location"] == "/account/login/"
    assert Client().get("/account/papers/papers.bib")["Location"] == "/account/login/"


def test_staff_without_a_subscriber_session_saves_nothing(paper):
    staff = get_user_model().objects.create_user("ed", "ed@example.org", "pw-12345!")
    client = Client()
    client.force_login(staff)
    response = client.post(SAVE_URL, {"paper": paper.slug})
    assert response["Location"] == "/account/login/"
    assert not SavedPaper.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(paper):
    ada = SubscriberFactory()
    response = signed_in(ada).post(SAVE_URL, {"paper": paper.slug})
    assert response.status_code == 403
    assert not SavedPaper.objects.exists()
    library.save_paper(subscriber=ada, paper=paper)
    assert signed_in(ada).post(REMOVE_URL, {"paper": paper.slug}).status_code == 403
    assert SavedPaper.objects.count() == 1


def test_a_get_changes_nothing(paper):
    ada = SubscriberFactory()
    assert signed_in(ada).get(SAVE_URL, {"paper": paper.slug}).status_code == 405
    assert not SavedPaper.objects.exists()


@pytest.mark.parametrize("slug", ["no-such-paper", "", "x" * 5000, "'; DROP TABLE--"])
def test_saving_an_unknown_paper_is_404(paper, slug):
    client = signed_in(SubscriberFactory())
    response = client.post(
        SAVE_URL, {"paper": slug, "csrfmiddlewaretoken": csrf(client)}
    )
    assert response.status_code == 404
    assert not SavedPaper.objects.exists()


def test_saving_a_paper_deleted_since_the_page_was_shown_is_404(paper):
    client = signed_in(SubscriberFactory())
    token = csrf(client)
    paper.delete()
    response = client.post(
        SAVE_URL, {"paper": "convnext", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 404
    assert not SavedPaper.objects.exists()


def test_a_subscriber_can_neither_see_nor_remove_anothers_papers(paper):
    ada, eve = SubscriberFactory(), SubscriberFactory()
    library.save_paper(subscriber=ada, paper=paper)
    client = signed_in(eve)

    assert paper.title not in client.get("/account/").content.decode()
    assert paper.title not in client.get("/account/papers/").content.decode()
    assert client.get("/account/papers/papers.bib").content == b""
    client.post(REMOVE_URL, {"paper": paper.slug, "csrfmiddlewaretoken": csrf(client)})
    client.post(REMOVE_URL, {"paper": paper.slug, "subscriber": ada.pk,
                             "csrfmiddlewaretoken": csrf(client)})  # fmt: skip

    assert list(SavedPaper.objects.values_list("subscriber_id", flat=True)) == [ada.pk]


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example/",
               "javascript:alert(1)", "evil.example"],
)  # fmt: skip
def test_the_return_address_never_leaves_the_site(paper, target):
    client = signed_in(SubscriberFactory())
    response = client.post(SAVE_URL, {"paper": paper.slug, "next": target,
                                      "csrfmiddlewaretoken": csrf(client)})  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == "/account/papers/"


def test_a_hostile_paper_title_stays_text_in_the_library(db):
    PaperFactory(slug="evil", title='<script>alert("x")</script>')
    client = signed_in(SubscriberFactory())
    client.post(SAVE_URL, {"paper": "evil", "csrfmiddlewaretoken": csrf(client)})
    html = client.get("/account/papers/").content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;" in html
