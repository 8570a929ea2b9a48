"""Exporting papers as BibTeX and CSL-JSON, and importing the export back."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from issues.models import Paper
from issues.paper_export import iter_bibtex, iter_csl
from issues.paper_import import import_papers

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "issues"
FIELDS = ["title", "authors", "year", "venue", "arxiv_id", "doi", "url"]

# Titles and names that LaTeX, BibTeX's name lists or JSON could mangle.
HARD = [
    {
        "title": r"50% of {Braces} & $dollars$ #1 under_score ~tilde ^caret \back",
        "authors": ["Zoë Müller-Lüdenscheidt", "Martin Luther King, Jr.", "Ng"],
        "year": 2024,
        "venue": "Journal of Odd Characters",
        "doi": "10.1002/(SICI)1097-4571(199806)49:8<693::AID-ASI4>3.0.CO;2-0",
    },
    {
        "title": "Dashes -- and --- and quotes `like' ''these'' \"too\"",
        "authors": ["Smith and Sons Research Group", "Ludwig van Beethoven"],
        "year": 2023,
        "venue": "NeurIPS",
        "arxiv_id": "2310.06825v2",
    },
    {
        "title": "<script>alert('x')</script> 数学 😀",
        "authors": ["José Ñúñez", "Ørsted, Hans"],
        "year": None,
        "url": "https://example.org/~user/paper.pdf?a=1&b=2#s%201",
    },
    {"title": "Solo", "authors": [], "year": 1999, "arxiv_id": "hep-th/9901001"},
]


def _values() -> list[tuple]:
    return sorted(
        tuple(json.dumps(v) for v in row) for row in Paper.objects.values_list(*FIELDS)
    )


def _make_hard_papers() -> None:
    for n, values in enumerate(HARD):
        Paper.objects.create(slug=f"hard-{n}", **values)


def _fixture_and_hard_papers() -> None:
    import_papers(data=(FIXTURES / "papers.bib").read_bytes(), filename="papers.bib")
    _make_hard_papers()


@pytest.mark.parametrize("fmt", ["bibtex", "csl"])
def test_an_export_imported_into_an_empty_quire_gives_the_same_papers(fmt):
    _fixture_and_hard_papers()
    before = _values()
    assert len(before) == 51
    text = "".join(
        iter_bibtex(Paper.objects.all())
        if fmt == "bibtex"
        else (iter_csl(Paper.objects.all()))
    )
    Paper.objects.all().delete()

    report = import_papers(data=text.encode(), filename=f"export.{fmt}", format=fmt)

    assert report.refused == []
    assert len(report.created) == 51
    assert _values() == before


@pytest.mark.parametrize("fmt", ["bibtex", "csl"])
def test_an_export_imported_again_matches_every_paper(fmt):
    _fixture_and_hard_papers()
    text = "".join(
        iter_bibtex(Paper.objects.all())
        if fmt == "bibtex"
        else (iter_csl(Paper.objects.all()))
    )

    report = import_papers(data=text.encode(), filename="again", format=fmt)

    assert len(report.matched) == 51 and report.created == report.refused == []
    assert Paper.objects.count() == 51


def test_the_bibtex_export_is_what_reference_managers_read():
    _make_hard_papers()
    Paper.objects.create(
        slug="convnet", title="A ConvNet for the 2020s", authors=["Zhuang Liu"],
        year=2022, venue="CVPR", arxiv_id="2201.03545",
        doi="10.1109/CVPR52688.2022.01167",
    )  # fmt: skip

    text = "".join(iter_bibtex(Paper.objects.all()))

    assert text.startswith("% Papers exported from Quire, in UTF-8.\n")
    assert (
        "@inproceedings{liu2022convnet,\n"
        "  title = {A ConvNet for the 2020s},\n"
        "  author = {Zhuang Liu},\n"
        "  year = {2022},\n"
        "  booktitle = {CVPR},\n"
        "  eprint = {2201.03545},\n"
        "  archivePrefix = {arXiv},\n"
        "  doi = {10.1109/CVPR52688.2022.01167},\n"
        "}\n"
    ) in text
    assert (
        r"title = {50\% of \{Braces\} \& \$dollars\$ \#1 under\_score "
        r"\textasciitilde{}tilde ^caret \textbackslash{}back}"
    ) in text
    assert (
        "author = {Zoë Müller-Lüdenscheidt and {Martin Luther King, Jr.} and Ng}"
        in (text)
    )
    assert "@article{mullerludenscheidt202450," in text
    assert "doi = {10.1002/(SICI)1097-4571(199806)49:8<693::AID-ASI4>3.0.CO;2-0}" in (
        text
    )


def test_the_csl_export_is_one_json_list_as_zotero_writes_it():
    _make_hard_papers()

    items = json.loads("".join(iter_csl(Paper.objects.all())))

    # By year, papers without one last.
    assert [item["title"] for item in items][-1].startswith("<script>")
    solo = next(item for item in items if item["title"] == "Solo")
    assert solo == {
        "id": "anon1999solo",
        "title": "Solo",
        "type": "article",
        "issued": {"date-parts": [[1999]]},
        "number": "arXiv:hep-th/9901001",
        "publisher": "arXiv",
    }
    assert json.loads("".join(iter_csl(Paper.objects.none()))) == []


def test_the_export_command_writes_a_year_or_everything(tmp_path, capsys):
    _fixture_and_hard_papers()

    call_command("export_papers", "--format", "bibtex", "--year", "2022")
    out = capsys.readouterr().out
    target = tmp_path / "all.json"
    call_command("export_papers", "--format", "csl", "-o", str(target))

    assert out.count("\n@") == Paper.objects.filter(year=2022).count() == 7
    assert "year = {2023}" not in out
    assert len(json.loads(target.read_text(encoding="utf-8"))) == 51


def test_the_export_reads_papers_in_chunks(django_assert_max_num_queries):
    Paper.objects.bulk_create(
        Paper(slug=f"p-{n}", title=f"Paper {n}", year=2020) for n in range(2_500)
    )
    with django_assert_max_num_queries(4):
        chunks = list(iter_bibtex(Paper.objects.all()))
    assert len(chunks) == 2_501
