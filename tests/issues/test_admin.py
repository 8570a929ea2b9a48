import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from issues.models import Issue
from tests.factories.issues import (
    CitationFactory,
    IssueFactory,
    PaperFactory,
    issue_admin_form,
)

pytestmark = pytest.mark.django_db


def _png(size=(8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return out.getvalue()


def test_issue_list_shows_status_access_publish_time_and_citations(admin_client):
    issue = IssueFactory(title="Listed issue", published=True)
    CitationFactory(issue=issue)
    CitationFactory(issue=issue)
    response = admin_client.get(reverse("admin:issues_issue_changelist"))
    text = response.content.decode()
    assert "Listed issue" in text
    # The admin theme adds its own classes and a label to each cell.
    assert "column-citation_count" in text and re.search(
        r'<td class="field-citation_count[ "][^>]*>2</td>', text
    )
    for column in ("column-status", "column-access", "column-publish_at"):
        assert column in text
    search = admin_client.get(reverse("admin:issues_issue_changelist"), {"q": "Listed"})
    assert "Listed issue" in search.content.decode()
    filtered = admin_client.get(
        reverse("admin:issues_issue_changelist"), {"status__exact": "draft"}
    )
    assert "Listed issue" not in filtered.content.decode()


def test_issue_change_form_has_editor_preview_send_panel_and_citation_picker(
    admin_client,
):
    issue = IssueFactory()
    text = admin_client.get(
        reverse("admin:issues_issue_change", args=[issue.pk])
    ).content.decode()
    assert "markdownx-editor" in text
    assert 'data-markdownx-urls-path="/markdownx/markdownify/"' in text
    assert "markdownx-preview" in text
    assert "The send panel on the issue admin page" not in text  # template comment
    assert text.index("Preview as readers will see it") < text.index('name="title"')
    # The citation picker: each citation's paper is chosen by searching.
    assert 'id="id_citations-__prefix__-paper" class="admin-autocomplete"' in text
    assert f'href="{issue.get_absolute_url()}"' in text
    assert "Cite a paper with [[arxiv:2201.03545]]" in text  # help for the author


def test_change_form_includes_the_send_panel_above_the_fields():
    from pathlib import Path

    template = Path("templates/admin/issues/issue/change_form.html").read_text()
    assert '{% include "admin/issues/_send_panel.html" %}' in template
    assert template.index("_send_panel") < template.index(
        "block.super }}\n{% endblock field_sets"
    )


def test_adding_an_issue_in_the_admin_fills_slug_and_records_citations(admin_client):
    paper = PaperFactory(arxiv_id="2201.03545")
    response = admin_client.post(
        reverse("admin:issues_issue_add"),
        issue_admin_form(slug="", body="A card: [[arxiv:2201.03545]]"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    issue = Issue.objects.get()
    assert issue.slug == "diffusion-goes-latent"
    assert list(issue.papers.all()) == [paper]
    assert "paper-ref" in issue.body_html


def test_a_paper_picked_by_hand_and_referenced_is_cited_once(admin_client):
    paper = PaperFactory(arxiv_id="2201.03545")
    data = issue_admin_form(body="[[arxiv:2201.03545]]")
    data.update({
        "citations-TOTAL_FORMS": "1",
        "citations-0-paper": str(paper.pk),
        "citations-0-position": "1",
        "citations-0-rank": "1",
        "citations-0-note": "Best of the year",
    })  # fmt: skip
    response = admin_client.post(reverse("admin:issues_issue_add"), data)
    assert response.status_code == 302
    citation = Issue.objects.get().citations.get()
    assert (citation.paper, citation.rank, citation.note) == (
        paper,
        1,
        "Best of the year",
    )


def test_publishing_with_an_unknown_reference_is_refused_and_keeps_the_text(
    admin_client,
):
    body = "Draft text [[arxiv:2301.99999]] that must not be lost"
    response = admin_client.post(
        reverse("admin:issues_issue_add"),
        issue_admin_form(body=body, status="published"),
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "These references name no paper yet: [[arxiv:2301.99999]]" in text
    assert "that must not be lost" in text
    assert not Issue.objects.exists()
    # As a draft it saves; its page tells the author, the stored HTML stays plain.
    response = admin_client.post(
        reverse("admin:issues_issue_add"), issue_admin_form(body=body, status="draft")
    )
    assert response.status_code == 302
    issue = Issue.objects.get()
    assert "paper-ref" not in issue.body_html
    assert "Draft text arXiv:2301.99999 that must" in issue.body_html
    page = admin_client.get(reverse("admin:issues_issue_change", args=[issue.pk]))
    assert "1 unknown reference</strong>" in page.content.decode()


def test_paper_admin_searches_title_author_and_arxiv_id(admin_client):
    PaperFactory(title="A ConvNet for the 2020s", authors=["Zhuang Liu"],
                 arxiv_id="2201.03545")  # fmt: skip
    PaperFactory(
        title="Something else", authors=["Other Person"], arxiv_id="2204.01697"
    )
    url = reverse("admin:issues_paper_changelist")
    for q in ("ConvNet", "Zhuang", "2201.03545"):
        text = admin_client.get(url, {"q": q}).content.decode()
        assert "A ConvNet for the 2020s" in text and "Something else" not in text, q


def test_paper_admin_lists_the_issues_citing_it(admin_client):
    citation = CitationFactory(issue=IssueFactory(title="Citing issue"))
    text = admin_client.get(
        reverse("admin:issues_paper_change", args=[citation.paper.pk])
    ).content.decode()
    assert "Issues citing this paper" in text and "Citing issue" in text


def test_paper_admin_takes_authors_one_per_line_and_validates_arxiv(admin_client):
    data = {
        "title": "MaxViT", "slug": "", "authors": "Zhengzhong Tu\n Hossein Talebi \n\n",
        "year": "2022", "venue": "ECCV", "arxiv_id": "https://arxiv.org/abs/2204.1697",
        "doi": "", "url": "", "code_url": "", "summary": "",
        "citations-TOTAL_FORMS": "0", "citations-INITIAL_FORMS": "0",
        "citations-MIN_NUM_FORMS": "0", "citations-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    response = admin_client.post(reverse("admin:issues_paper_add"), data)
    assert response.status_code == 200
    assert "Enter an arXiv id such as 2201.03545" in response.content.decode()
    data["arxiv_id"] = "2204.01697"
    response = admin_client.post(reverse("admin:issues_paper_add"), data)
    assert response.status_code == 302
    from issues.models import Paper

    paper = Paper.objects.get()
    assert paper.authors == ["Zhengzhong Tu", "Hossein Talebi"]
    assert paper.slug == "maxvit"


def _paper_form(**overrides):
    data = {
        "title": "Llama 2", "slug": "", "authors": "Hugo Touvron", "year": "2023",
        "venue": "", "arxiv_id": "", "doi": "", "url": "", "code_url": "",
        "summary": "", "citations-TOTAL_FORMS": "0", "citations-INITIAL_FORMS": "0",
        "citations-MIN_NUM_FORMS": "0", "citations-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("pasted", "stored"),
    [
        ("arXiv:2307.09288", "2307.09288"),
        ("  arxiv: 2307.09288v3 ", "2307.09288v3"),
        ("https://arxiv.org/abs/2307.09288v2", "2307.09288v2"),
        ("http://arxiv.org/pdf/2307.09288v1.pdf", "2307.09288v1"),
        ("https://arxiv.org/pdf/2307.09288", "2307.09288"),
        ("https://export.arxiv.org/abs/2307.09288?context=cs#top", "2307.09288"),
        ("arxiv.org/abs/hep-th/9901001", "hep-th/9901001"),
        ("https://arxiv.org/abs/math.GT/0309136v2/", "math.GT/0309136v2"),
    ],
)
def test_paper_form_takes_an_arxiv_id_as_arxiv_shows_it(admin_client, pasted, stored):
    response = admin_client.post(
        reverse("admin:issues_paper_add"), _paper_form(arxiv_id=pasted)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    from issues.models import Paper

    paper = Paper.objects.get()
    assert paper.arxiv_id == stored
    # The bare id is what issues cite it by.
    issue = IssueFactory(body=f"[[arxiv:{stored}]]")
    assert list(issue.papers.all()) == [paper]


@pytest.mark.parametrize(
    "pasted",
    [
        "https://arxiv.org/abs/2307.9288",  # a link, but not to a valid id
        "https://example.org/abs/2307.09288",
        "arXiv:hello",
    ],
)
def test_paper_form_still_refuses_what_is_not_an_arxiv_id(admin_client, pasted):
    response = admin_client.post(
        reverse("admin:issues_paper_add"), _paper_form(arxiv_id=pasted)
    )
    assert response.status_code == 200
    assert "Enter an arXiv id such as 2201.03545" in response.content.decode()
    from issues.models import Paper

    assert not Paper.objects.exists()


@pytest.mark.parametrize(
    "pasted",
    [
        "10.1109/CVPR52688.2022.01167",
        "https://doi.org/10.1109/CVPR52688.2022.01167",
        "http://dx.doi.org/10.1109/CVPR52688.2022.01167",
        "doi:10.1109/CVPR52688.2022.01167",
        " DOI: 10.1109/CVPR52688.2022.01167 ",
    ],
)
def test_paper_form_stores_a_doi_bare(admin_client, pasted):
    response = admin_client.post(
        reverse("admin:issues_paper_add"), _paper_form(doi=pasted)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    from issues.models import Paper

    assert Paper.objects.get().doi == "10.1109/CVPR52688.2022.01167"


def test_a_doi_link_with_escaped_characters_is_stored_as_the_doi(admin_client):
    link = "https://doi.org/10.1002/(SICI)1097-4636(199706)35%3A4%3C441"
    response = admin_client.post(
        reverse("admin:issues_paper_add"), _paper_form(doi=link)
    )
    assert response.status_code == 302
    from issues.models import Paper

    assert Paper.objects.get().doi == "10.1002/(SICI)1097-4636(199706)35:4<441"


def test_papers_made_in_code_are_tidied_the_same_way():
    paper = PaperFactory(arxiv_id="https://arxiv.org/abs/2307.09288v2",
                         doi="doi:10.1/abc")  # fmt: skip
    paper.refresh_from_db()
    assert (paper.arxiv_id, paper.doi) == ("2307.09288v2", "10.1/abc")


def test_paper_autocomplete_finds_papers_for_the_citation_picker(admin_client):
    PaperFactory(title="Masked Autoencoders")
    response = admin_client.get(
        "/admin/autocomplete/",
        {"term": "Masked", "app_label": "issues", "model_name": "citation",
         "field_name": "paper"},
    )  # fmt: skip
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Masked Autoencoders"]


def test_paper_autocomplete_pages_through_the_newest_papers_first(admin_client):
    for year, title in [(2019, "Masked B"), (2023, "Masked C"), (2023, "Masked A")]:
        PaperFactory(title=title, year=year)
    PaperFactory.create_batch(20, title="Masked old", year=2001)
    query = {"term": "Masked", "app_label": "issues", "model_name": "citation",
             "field_name": "paper"}  # fmt: skip

    first = admin_client.get("/admin/autocomplete/", query).json()
    second = admin_client.get("/admin/autocomplete/", {**query, "page": 2}).json()

    titles = [r["text"] for r in first["results"]]
    assert titles[:3] == ["Masked A", "Masked C", "Masked B"]
    assert first["pagination"]["more"] is True
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 23


# --- The editor's endpoints -----------------------------------------------------------


def test_preview_is_staff_only(staff_client):
    url = "/markdownx/markdownify/"
    assert Client().post(url, {"content": "# hi"}).status_code == 403
    reader = Client()
    reader.force_login(
        get_user_model().objects.create_user("reader", "r@example.org", "pw-123456!")
    )
    assert reader.post(url, {"content": "# hi"}).status_code == 403
    response = staff_client.post(url, {"content": "**hi** <script>x</script>"})
    assert response.status_code == 200
    assert response.content.decode() == "<p><strong>hi</strong> </p>\n"


def test_preview_rejects_get(staff_client):
    assert staff_client.get("/markdownx/markdownify/").status_code == 405


def test_upload_is_staff_only(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    image = SimpleUploadedFile("cat.png", _png(), content_type="image/png")
    assert client.post("/markdownx/upload/", {"image": image}).status_code == 403
    assert not list(tmp_path.rglob("*.png"))


def test_staff_upload_an_image_and_get_markdown_for_it(
    staff_client, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    image = SimpleUploadedFile("cat on laptop.png", _png(), content_type="image/png")
    response = staff_client.post("/markdownx/upload/", {"image": image},
                                 HTTP_X_REQUESTED_WITH="XMLHttpRequest")  # fmt: skip
    assert response.status_code == 200
    code = response.json()["image_code"]
    assert code.startswith("![cat on laptop](/media/markdownx/") and code.endswith(
        ".png)"
    )
    assert len(list(tmp_path.rglob("*.png"))) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("evil.png", b"<script>alert(1)</script>", "not an image"),
        ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
         "not an image"),
        ("doc.pdf", b"%PDF-1.4 fake", "not an image"),
    ],
)  # fmt: skip
def test_uploads_that_are_not_images_are_refused(
    staff_client, settings, tmp_path, name, content, message
):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    response = staff_client.post("/markdownx/upload/", {"image": upload})
    assert response.status_code == 400
    assert message in response.json()["image"][0]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_uploads_over_the_size_limit_are_refused(staff_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.QUIRE_UPLOAD_MAX_BYTES = 100_000
    image = _png((400, 400))
    upload = SimpleUploadedFile("big.png", image + b"\0" * (300_000 - len(image)),
                                content_type="image/png")  # fmt: skip
    response = staff_client.post("/markdownx/upload/", {"image": upload})
    assert response.status_code == 400
    assert response.json()["image"] == [
        "This image is 0.3 MB; the limit is 0.1 MB. Resize it and try again."
    ]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_stale_form_cannot_put_a_published_issue_back_to_scheduled(admin_client):
    # The author opened the page while the issue was scheduled; beat published it.
    issue = IssueFactory(published=True, title="Diffusion goes latent")
    stale = issue_admin_form(status="scheduled", slug=issue.slug)

    response = admin_client.post(
        reverse("admin:issues_issue_change", args=[issue.pk]), stale
    )

    assert response.status_code == 200
    assert "cannot go back to draft or scheduled" in response.content.decode()
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED


def test_editing_a_paper_in_the_admin_refreshes_the_issues_that_show_its_card(
    admin_client,
):
    paper = PaperFactory(title="Old title", slug="convnext", arxiv_id="2201.03545")
    issue = IssueFactory(body="[[arxiv:2201.03545]]")

    response = admin_client.post(
        reverse("admin:issues_paper_change", args=[paper.pk]),
        _paper_form(title="New title", slug="convnext", arxiv_id="2201.03545"),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    issue.refresh_from_db()
    assert "New title" in issue.body_html and "Old title" not in issue.body_html


def test_adding_a_paper_in_the_admin_resolves_a_draft_that_references_it(
    admin_client,
):
    issue = IssueFactory(body="[[arxiv:2307.09288]]")

    response = admin_client.post(
        reverse("admin:issues_paper_add"), _paper_form(arxiv_id="2307.09288")
    )

    assert response.status_code == 302
    issue.refresh_from_db()
    assert "Llama 2" in issue.body_html
    assert issue.unknown_references == []
    assert issue.citations.count() == 1


def test_deleting_papers_in_the_admin_takes_their_cards_out_of_issues(admin_client):
    one = PaperFactory(title="Withdrawn one", arxiv_id="2201.03545")
    two = PaperFactory(title="Withdrawn two", arxiv_id="2204.01697")
    issue = IssueFactory(body="[[arxiv:2201.03545]]\n\n[[arxiv:2204.01697]]")

    response = admin_client.post(
        reverse("admin:issues_paper_delete", args=[one.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    response = admin_client.post(
        reverse("admin:issues_paper_changelist"),
        {"action": "delete_selected", "_selected_action": [two.pk], "post": "yes"},
    )
    assert response.status_code == 302

    issue.refresh_from_db()
    assert "Withdrawn" not in issue.body_html
    assert issue.unknown_references == ["[[arxiv:2201.03545]]", "[[arxiv:2204.01697]]"]
