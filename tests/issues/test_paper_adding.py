"""Adding a paper from its arXiv id or DOI: the admin's page and the editor's one
click, for staff who may add papers and nobody else."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from issues.models import Issue, Paper
from issues.paper_adding import add_paper_from_identifier, escape_markdown
from issues.sending import services as sending
from subscribers.sessions import SESSION_KEY
from tests.factories.issues import IssueFactory, PaperFactory
from tests.factories.subscribers import SubscriberFactory
from tests.support.paper_apis import (
    answer_arxiv,
    answer_crossref,
    arxiv_requests,
)

pytestmark = pytest.mark.django_db

DOI = "10.1109/CVPR52688.2022.01167"
ADD_FROM_ID = "admin:issues_paper_add_from_id"
CREATE = "admin:issues_paper_create_from_id"


@pytest.fixture
def author(editor):
    """The editor fixture: staff who may add and change papers and issues."""
    return editor


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def staff_without_add_paper():
    user = get_user_model().objects.create_user(
        "viewer", "viewer@example.org", "pw-for-tests-only", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="issues",
            codename__in=["view_paper", "view_issue", "change_issue", "change_paper"],
        )
    )
    return user


# --- The admin's page -----------------------------------------------------------------
def test_the_author_pastes_an_id_reviews_the_filled_form_and_saves(author, paper_apis):
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])
    client = login(author)

    page = client.get(reverse(ADD_FROM_ID))
    assert page.status_code == 200
    assert "arXiv id, DOI or link" in page.text

    response = client.post(
        reverse(ADD_FROM_ID), {"identifier": "https://arxiv.org/abs/2201.03545"}
    )
    assert response.status_code == 302
    add_form = client.get(response["Location"])
    assert add_form.status_code == 200
    form = add_form.context["adminform"].form
    assert form.initial["title"] == "A ConvNet for the 2020s"
    assert form.initial["arxiv_id"] == "2201.03545v2"
    assert form.initial["doi"] == DOI
    assert form.initial["venue"] == "CVPR 2022"
    assert form.initial["year"] == 2022
    assert 'value="A ConvNet for the 2020s"' in add_form.text
    assert "Zhuang Liu\nHanzi Mao" in add_form.text
    assert Paper.objects.count() == 0  # nothing saved before the author saves

    # The author edits what came back, then saves.
    saved = client.post(
        response["Location"],
        {
            "title": "A ConvNet for the 2020s (ConvNeXt)",
            "slug": "convnext",
            "authors": "Zhuang Liu\nHanzi Mao",
            "year": "2022",
            "venue": "CVPR",
            "arxiv_id": "2201.03545v2",
            "doi": DOI,
            "url": "",
            "code_url": "https://github.com/facebookresearch/ConvNeXt",
            "summary": form.initial["summary"],
            "citations-TOTAL_FORMS": "0",
            "citations-INITIAL_FORMS": "0",
        },
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    paper = Paper.objects.get()
    assert paper.title == "A ConvNet for the 2020s (ConvNeXt)"
    assert paper.venue == "CVPR"
    assert paper.arxiv_id == "2201.03545v2"
    assert "Roaring 20s" in paper.summary_html
    # Asked once: the add form was filled from the cache.
    assert len(arxiv_requests(paper_apis)) == 1


def test_the_page_shows_why_an_id_gave_nothing(author, paper_apis):
    answer_arxiv(paper_apis, "arxiv_incorrect_id.atom", ids=["9999.99999"], status=400)

    response = login(author).post(reverse(ADD_FROM_ID), {"identifier": "9999.99999"})

    assert response.status_code == 200
    assert "arXiv has no paper 9999.99999" in response.text
    assert Paper.objects.count() == 0


def test_a_paper_already_here_opens_instead_of_a_second(author, paper_apis):
    paper = PaperFactory(arxiv_id="2201.03545v1", slug="convnext")

    response = login(author).post(reverse(ADD_FROM_ID), {"identifier": "2201.03545"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:issues_paper_change", args=[paper.pk])
    assert Paper.objects.count() == 1
    assert paper_apis.log == []


def test_a_doi_fills_the_form_from_crossref(author, paper_apis):
    answer_crossref(paper_apis, DOI, "crossref_convnext.json")
    client = login(author)

    response = client.post(
        reverse(ADD_FROM_ID), {"identifier": f"https://doi.org/{DOI}"}
    )
    form = client.get(response["Location"]).context["adminform"].form

    assert form.initial["title"] == "A ConvNet for the 2020s"
    assert form.initial["doi"] == DOI
    assert form.initial["year"] == 2022


@pytest.mark.parametrize(
    "who", ["anonymous", "reader", "subscriber", "staff without add"]
)
def test_nobody_else_may_use_the_page_and_nothing_is_asked_or_made(who, paper_apis):
    client = _client_for(who)

    page = client.get(reverse(ADD_FROM_ID))
    post = client.post(reverse(ADD_FROM_ID), {"identifier": "2201.03545"})

    expected = 403 if who == "staff without add" else 302
    assert page.status_code == expected
    assert post.status_code == expected
    if expected == 302:
        assert "/admin/login/" in post["Location"]
    assert paper_apis.log == []
    assert Paper.objects.count() == 0


def _client_for(who: str) -> Client:
    client = Client()
    if who == "reader":
        client.force_login(
            get_user_model().objects.create_user("reader", "r@example.org", "pw-x-1")
        )
    elif who == "subscriber":
        # A subscriber signed in by a magic link: a session, no staff account.
        subscriber = SubscriberFactory()
        session = client.session
        session[SESSION_KEY] = subscriber.pk
        session.save()
    elif who == "staff without add":
        client.force_login(staff_without_add_paper())
    return client


# --- The editor's one click -----------------------------------------------------------
def test_one_click_adds_the_paper_and_the_issue_shows_its_card(author, paper_apis):
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])
    issue = IssueFactory(body="Read this:\n\n[[arxiv:2201.03545]]\n")
    assert issue.unknown_references == ["[[arxiv:2201.03545]]"]
    with pytest.raises(sending.SendingError):
        sending.check_publishable(issue=issue)

    response = login(author).post(reverse(CREATE), {"identifier": "arxiv:2201.03545"})

    assert response.status_code == 201
    assert response.json()["title"] == "A ConvNet for the 2020s"
    paper = Paper.objects.get()
    assert paper.arxiv_id == "2201.03545v2"
    assert paper.arxiv_latest_version == 2
    assert paper.authors[0] == "Zhuang Liu"
    issue.refresh_from_db()
    assert issue.unknown_references == []
    assert 'class="paper-card"' in issue.free_html
    sending.check_publishable(issue=issue)  # no longer refused


def test_a_second_click_adds_no_second_paper(author, paper_apis):
    answer_arxiv(paper_apis, "arxiv_convnext.atom", ids=["2201.03545"])
    client = login(author)

    first = client.post(reverse(CREATE), {"identifier": "arxiv:2201.03545"})
    second = client.post(reverse(CREATE), {"identifier": "arxiv:2201.03545v2"})

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["created"] is False
    assert Paper.objects.count() == 1
    assert len(arxiv_requests(paper_apis)) == 1


def test_one_click_says_why_when_arxiv_has_no_such_paper(author, paper_apis):
    answer_arxiv(paper_apis, "arxiv_no_results.atom", ids=["2301.99999"])

    response = login(author).post(reverse(CREATE), {"identifier": "arxiv:2301.99999"})

    assert response.status_code == 400
    assert response.json() == {"error": "arXiv has no paper 2301.99999."}
    assert Paper.objects.count() == 0


def test_one_click_passes_on_arxivs_slow_down(author, paper_apis):
    paper_apis.expect_request("/api/query").respond_with_data(
        "Rate exceeded.", status=503, headers={"Retry-After": "30"}
    )

    response = login(author).post(reverse(CREATE), {"identifier": "arxiv:2201.03545"})

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"] == "arXiv asks us to slow down, try again in 30 s."
    assert Paper.objects.count() == 0


@pytest.mark.parametrize(
    "who", ["anonymous", "reader", "subscriber", "staff without add"]
)
def test_nobody_else_may_click_and_nothing_is_made(who, paper_apis):
    response = _client_for(who).post(reverse(CREATE), {"identifier": "2201.03545"})

    if who == "staff without add":
        assert response.status_code == 403
        assert response.json()["error"] == "Only staff who may add papers can do this."
    else:
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    assert paper_apis.log == []
    assert Paper.objects.count() == 0


def test_one_click_needs_the_csrf_token(author, paper_apis):
    client = Client(enforce_csrf_checks=True)
    client.force_login(author)

    response = client.post(reverse(CREATE), {"identifier": "2201.03545"})

    assert response.status_code == 403
    assert paper_apis.log == []
    assert Paper.objects.count() == 0


def test_one_click_answers_get_with_405(author, paper_apis):
    response = login(author).get(reverse(CREATE), {"identifier": "2201.03545"})

    assert response.status_code == 405
    assert Paper.objects.count() == 0


# --- The preview ----------------------------------------------------------------------
def test_the_preview_offers_to_add_an_unknown_arxiv_or_doi_paper(author):
    response = login(author).post(
        "/markdownx/markdownify/",
        {"content": "[[arxiv:2301.99999]]\n\n[[paper:nothing-here]]\n"},
    )

    assert response.status_code == 200
    assert 'class="paper-ref-add"' in response.text
    add_url = reverse(ADD_FROM_ID)
    assert f'href="{add_url}?identifier=arxiv%3A2301.99999"' in response.text
    assert response.text.count("paper-ref-add") == 1  # a slug names no API's paper


def test_readers_never_get_the_add_link(paper_apis):
    issue = IssueFactory(body="[[arxiv:2301.99999]]\n", status=Issue.Status.DRAFT)

    assert "paper-ref-add" not in issue.free_html
    assert "admin" not in issue.free_html


# --- Hostile details ------------------------------------------------------------------
def test_an_abstract_is_kept_as_text_not_markup():
    escaped = escape_markdown("<script>alert(1)</script> [x](javascript:y) *bold*\n# h")

    assert escaped == (
        "\\<script\\>alert(1)\\</script\\> \\[x\\](javascript:y) \\*bold\\*\n\\# h"
    )


def test_hostile_details_from_the_api_reach_the_page_as_text(author, paper_apis):
    paper_apis.expect_request("/works/10.1234/evil").respond_with_json(
        {
            "status": "ok",
            "message": {
                "DOI": "10.1234/evil",
                "title": ["<img src=x onerror=alert(1)>Evil"],
                "author": [{"given": "<b>Eve</b>", "family": "Hacker"}],
                "abstract": "<jats:p><script>alert(1)</script>Text</jats:p>",
                "issued": {"date-parts": [[2023]]},
            },
        }
    )

    paper, created = add_paper_from_identifier(identifier="10.1234/evil")

    assert created
    page = Client().get(paper.get_absolute_url())
    assert "<img src=x" not in page.text
    assert "<script>alert" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;Evil" in page.text
