"""The Paper admin's import page and its exports, as the author uses them."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from issues import paper_import_admin
from issues.models import Paper
from tests.factories.issues import PaperFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "issues"
IMPORT = reverse("admin:issues_paper_import")
EXPORT = reverse("admin:issues_paper_export")
CHANGELIST = reverse("admin:issues_paper_changelist")


def upload(name: str, data: bytes | None = None, **fields) -> dict:
    content = (FIXTURES / name).read_bytes() if data is None else data
    return {"file": SimpleUploadedFile(name, content), "format": "auto", **fields}


def test_the_changelist_links_to_import_and_export(staff_client):
    html = staff_client.get(CHANGELIST).content.decode()
    filtered = staff_client.get(CHANGELIST, {"year__exact": "2022"}).content.decode()

    assert f'href="{IMPORT}"' in html
    assert f'href="{EXPORT}?format=bibtex"' in html
    assert f'href="{EXPORT}?format=csl"' in html
    assert f'href="{EXPORT}?format=bibtex&amp;year=2022">Export 2022' in filtered


def test_uploading_a_bibtex_file_shows_the_report(staff_client):
    PaperFactory(title="Mine", arxiv_id="2201.03545", venue="")
    page = staff_client.get(IMPORT)
    assert page.status_code == 200
    assert 'id="id_fill_empty" checked>' in page.content.decode()

    response = staff_client.post(IMPORT, upload("papers.bib", fill_empty="on"))

    html = response.content.decode()
    assert response.status_code == 200
    assert '<td data-report="entries">55</td>' in html
    assert '<td data-report="created">46</td>' in html
    assert '<td data-report="matched">1</td>' in html
    assert '<td data-report="filled">1</td>' in html
    assert '<td data-report="refused">8</td>' in html
    assert (
        '<tr class="import-refused"><td>387</td><td>it has no title; add one.</td>'
    ) in html
    assert "<td>venue, doi</td>" in html
    # What the file says is shown escaped.
    assert "&lt;script&gt;alert(&quot;title&quot;)" in html
    assert "<script>alert" not in html
    assert Paper.objects.count() == 47


def test_a_file_refused_as_a_whole_imports_nothing_and_says_why(
    staff_client, monkeypatch
):
    monkeypatch.setattr(paper_import_admin, "MAX_FILE_BYTES", 1_000)
    PaperFactory()

    too_big = staff_client.post(IMPORT, upload("papers.bib"), follow=True)
    latin1 = staff_client.post(
        IMPORT, upload("old.bib", b"@misc{a, title={M\xfcller}}"), follow=True
    )

    assert "at most 0 MB can be imported at once" in too_big.content.decode()
    assert "Line 1 is not UTF-8 text" in latin1.content.decode()
    assert "Nothing was imported." in latin1.content.decode()
    assert Paper.objects.count() == 1


def test_unticking_fill_empty_keeps_matched_papers_as_they_are(staff_client):
    mine = PaperFactory(arxiv_id="2201.03545", venue="")

    staff_client.post(IMPORT, upload("papers.bib"))  # the box unticked

    mine.refresh_from_db()
    assert mine.venue == ""


def test_export_all_a_year_and_the_selected(staff_client):
    PaperFactory(title="Old", year=2019, arxiv_id="1901.00001")
    PaperFactory(title="New", year=2024, arxiv_id="2401.00001")

    everything = staff_client.get(EXPORT, {"format": "bibtex"})
    one_year = staff_client.get(EXPORT, {"format": "csl", "year": "2024"})
    selected = staff_client.post(
        CHANGELIST,
        {
            "action": "export_csl",
            "_selected_action": list(
                Paper.objects.filter(year=2019).values_list("pk", flat=True)
            ),
            "index": "0",
        },
    )

    assert everything["Content-Disposition"] == 'attachment; filename="papers.bib"'
    text = b"".join(everything.streaming_content).decode()
    assert "title = {Old}" in text and "title = {New}" in text
    assert one_year["Content-Disposition"] == (
        'attachment; filename="papers-2024.json"'
    )
    assert [i["title"] for i in json.loads(b"".join(one_year.streaming_content))] == [
        "New"
    ]
    assert [i["title"] for i in json.loads(b"".join(selected.streaming_content))] == [
        "Old"
    ]
