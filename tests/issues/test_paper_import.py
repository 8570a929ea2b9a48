"""Importing papers from BibTeX, RIS and CSL-JSON: counts, lines, hostile files."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from issues.models import Issue, Paper
from issues.paper_import import MAX_FILE_BYTES, ImportFailed, import_papers
from tests.factories.issues import IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "issues"


def run(name: str, **kwargs):
    data = (FIXTURES / name).read_bytes()
    return import_papers(data=data, filename=name, **kwargs)


def refused_lines(report) -> list[int]:
    return [line for line, _ in report.refused]


# The fixture's broken entries, by the line each starts on.
BIB_REFUSED = {
    387: "no title",
    394: "is not a DOI",
    402: "repeats the paper on line 13 (the same arXiv id)",
    411: "repeats the paper on line 251 (the same DOI)",
    419: "is not an arXiv id",
    427: "is not a year",
    434: "the entry is not closed",
    450: "Expected comma after entry key",
}


def test_a_bibtex_library_creates_matches_and_refuses_by_line():
    convnet = PaperFactory(
        title="ConvNeXt (my notes)", arxiv_id="2201.03545", venue="", authors=[]
    )
    go = PaperFactory(
        title="AlphaGo", doi="10.1038/NATURE16961", arxiv_id="", venue="Nature"
    )

    report = run("papers.bib")

    assert report.format == "bibtex"
    assert report.entries == 55
    assert len(report.created) == 45
    assert [(line, pk) for line, _, pk, _ in report.matched] == [
        (129, convnet.pk),
        (259, go.pk),
    ]
    assert refused_lines(report) == sorted(BIB_REFUSED)
    for line, reason in report.refused:
        assert BIB_REFUSED[line] in reason, (line, reason)
    assert Paper.objects.count() == 47
    # Matched papers are kept; only their empty fields are filled in.
    convnet.refresh_from_db()
    assert convnet.title == "ConvNeXt (my notes)"
    assert convnet.authors[:2] == ["Zhuang Liu", "Hanzi Mao"]
    assert convnet.venue.startswith("Proceedings of the IEEE/CVF Conference")
    assert convnet.doi == "10.1109/CVPR52688.2022.01167"
    assert report.matched[0][3] == ["authors", "venue", "doi"]
    go.refresh_from_db()
    assert go.title == "AlphaGo" and go.doi == "10.1038/NATURE16961"


def test_bibtex_values_come_out_as_readers_expect():
    run("papers.bib")

    def paper(**lookup) -> Paper:
        return Paper.objects.get(**lookup)

    # @string macros, LaTeX accents and protective braces.
    rombach = paper(doi="10.1109/CVPR52688.2022.01042")
    assert rombach.venue == (
        "Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern "
        "Recognition (CVPR)"
    )
    assert rombach.authors[-1] == "Björn Ommer"
    assert paper(arxiv_id="2302.13971").authors[-2:] == [
        "Timothée Lacroix",
        "Baptiste Rozière",
    ]
    assert paper(arxiv_id="1706.03762").authors[-2] == "Łukasz Kaiser"
    assert paper(arxiv_id="2205.14135").title == (
        "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness"
    )
    assert paper(title__startswith="Probabilistic Inference").authors == [
        "Alberto García-Durán",
        "João Gonçalves",
        "Søren Sørensen",
    ]
    assert paper(doi="10.1038/s41586-021-03819-2").authors[-1] == "Augustin Žídek"
    maaten = paper(title="Visualizing Data using t-SNE")
    assert maaten.authors[0] == "Laurens van der Maaten"
    assert maaten.url == "http://jmlr.org/papers/v9/vandermaaten08a.html"
    # arXiv ids from eprint, "arXiv preprint arXiv:…", DBLP's CoRR and a link;
    # arXiv and CoRR are no venue.
    for arxiv_id in ("1706.03762", "1810.04805", "2005.14165", "1910.03771v5"):
        found = paper(arxiv_id=arxiv_id)
        assert found.venue == "" and found.url == ""
    # DOIs: escaped underscore, a doi.org link.
    assert paper(doi="10.1007/978-3-319-24574-4_28").year == 2015
    assert paper(doi="10.1609/aaai.v35i12.17325").venue.startswith("Proceedings")
    assert paper(title="Deep Learning", year=2016).url == (
        "http://www.deeplearningbook.org"
    )
    # Slugs from titles, unique.
    assert paper(arxiv_id="1706.03762").slug == "attention-is-all-you-need"
    assert len(set(Paper.objects.values_list("slug", flat=True))) == 47


def test_importing_the_same_file_again_matches_every_paper():
    first = run("papers.bib")
    again = run("papers.bib")

    assert len(again.created) == 0
    assert len(again.matched) == len(first.created) == 47
    assert all(filled == [] for *_rest, filled in again.matched)
    assert Paper.objects.count() == 47


def test_keeping_matched_papers_leaves_them_alone():
    convnet = PaperFactory(arxiv_id="2201.03545", venue="", authors=[])

    report = run("papers.bib", fill_empty=False)

    convnet.refresh_from_db()
    assert convnet.venue == "" and convnet.authors == []
    assert report.filled == 0 and len(report.matched) == 2 - 1


def test_a_zotero_ris_export():
    report = run("zotero.ris")

    assert report.format == "ris"
    assert report.entries == 6
    assert [line for line, _ in report.created] == [1, 18, 35, 56]
    assert dict(report.refused) == {
        46: "it has no title; add one.",
        51: "the record has no end: add a line 'ER  - ' before the next 'TY  - '.",
    }
    convnet = Paper.objects.get(arxiv_id="2201.03545")
    assert convnet.authors == ["Zhuang Liu", "Hanzi Mao", "Chao-Yuan Wu"]
    assert convnet.doi == "10.48550/arXiv.2201.03545" and convnet.venue == ""
    assert convnet.year == 2022
    alphafold = Paper.objects.get(doi="10.1038/s41586-021-03819-2")
    assert alphafold.venue == "Nature" and alphafold.authors[-1] == "Augustin Žídek"
    assert alphafold.url == "https://www.nature.com/articles/s41586-021-03819-2"
    ddpm = Paper.objects.get(title="Denoising Diffusion Probabilistic Models")
    assert ddpm.venue == "Advances in Neural Information Processing Systems"
    assert ddpm.year == 2020 and ddpm.url.startswith("https://proceedings.neurips")


def test_a_zotero_csl_json_export():
    PaperFactory(title="Deep learning (review)", doi="10.1038/nature14539", year=2015)

    report = run("zotero.json")

    assert report.format == "csl"
    assert report.entries == 5
    assert [line for line, _ in report.created] == [2, 39, 59]
    assert [line for line, *_ in report.matched] == [22]
    assert report.refused == [(53, 'its "title" is not text; write it as a string.')]
    qlora = Paper.objects.get(arxiv_id="2305.14314")
    assert qlora.authors[0] == "Tim Dettmers" and qlora.year == 2023
    assert qlora.venue == ""
    resnet = Paper.objects.get(doi="10.1109/CVPR.2016.90")
    assert resnet.authors[-1] == "Laurens van der Maaten" and resnet.year == 2016
    assert Paper.objects.get(title="Deep Learning").authors == [
        "Ian Goodfellow",
        "OpenAI",
    ]


def test_the_format_is_guessed_from_the_contents_without_an_extension():
    data = (FIXTURES / "zotero.ris").read_bytes()
    assert import_papers(data=data, filename="export.txt").format == "ris"
    data = (FIXTURES / "zotero.json").read_bytes()
    assert import_papers(data=data, filename="export").format == "csl"


# ---- hostile files ---------------------------------------------------------------


def _refused_whole(data: bytes, message: str, **kwargs) -> None:
    before = Paper.objects.count()
    with pytest.raises(ImportFailed, match=message):
        import_papers(data=data, filename="x.bib", **kwargs)
    assert Paper.objects.count() == before


def test_a_file_too_large_is_refused_before_it_is_read():
    PaperFactory()
    data = b"@misc{a, title={x}}\n" + b"%" * MAX_FILE_BYTES
    _refused_whole(data, r"at most 20 MB can be imported at once\. Split it\.")


def test_a_file_not_in_utf8_is_refused_with_its_line_and_nothing_is_written():
    data = (
        b"@misc{a, title={Fine}, year={2020}}\n\n"
        b"@misc{b, title={M\xfcller's theorem}, year={2021}}\n"
    )
    _refused_whole(data, r"Line 3 is not UTF-8 text; save the file as UTF-8")


def test_an_unknown_format_and_an_empty_file_are_refused():
    _refused_whole(b"@misc{a, title={x}}", "Unknown format", format="endnote")
    _refused_whole(b"  \n\n", "The file is empty")


def test_broken_csl_json_is_refused_as_a_whole():
    data = b'[\n {"title": "One"},\n {"title": "Two",,}\n]'
    _refused_whole(data, r"Line 3 is not valid JSON", format="csl")
    _refused_whole(b"[" * 100_000 + b"]" * 100_000, "nested too deep", format="csl")
    _refused_whole(b'[{"title": "cut"}', "cut short", format="csl")


def test_hostile_entries_are_refused_with_their_lines_and_the_rest_imports():
    huge = "y" * 100_000
    deep = "{" * 3_000 + "x" + "}" * 3_000
    data = (
        "@misc{ok1, title={Kept Before}, year={2020}}\n"
        f"@misc{{long, title={{{huge}}}}}\n"
        f"@misc{{long2, title={{{'z' * 600}}}}}\n"
        f"@misc{{deep, title={{{deep}}}}}\n"
        "@misc{url, title={Bad Address}, url={javascript:alert(1)}}\n"
        f"@misc{{many, title={{Crowded}}, author={{{' and '.join(['A B'] * 1001)}}}}}\n"
        "@misc{ok2, title={Kept After}, year={2021}}\n"
    ).encode()

    report = import_papers(data=data, filename="hostile.bib")

    assert sorted(Paper.objects.values_list("title", flat=True)) == [
        "Kept After",
        "Kept Before",
    ]
    reasons = dict(report.refused)
    assert list(reasons) == [2, 3, 4, 5, 6]
    assert "100,000 characters long; a field may have at most 10,000" in reasons[2]
    assert (
        "title is 600 characters long; Quire keeps titles of up to 500" in (reasons[3])
    )
    assert "nested more than 10 deep" in reasons[4]
    assert "is not an http(s) address" in reasons[5]
    assert "more than 1000 authors" in reasons[6]


def test_html_in_an_imported_title_is_escaped_on_its_pages(client):
    run("papers.bib")
    paper = Paper.objects.get(arxiv_id="2403.00001")
    assert paper.title.startswith("<script>")

    html = client.get(paper.get_absolute_url()).content.decode()
    listing = client.get("/papers/").content.decode()

    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert" not in listing


# ---- set-based -------------------------------------------------------------------


def _bibtex_of(count: int) -> bytes:
    return "\n".join(
        f"@inproceedings{{k{n},\n  title = {{Paper number {n} on M{{\\\"u}}ller's "
        f"lemma}},\n  author = {{Liu, Zhuang and Mao, Hanzi}},\n  booktitle = {{ICLR}},"
        f"\n  year = {{2023}},\n  doi = {{10.5555/{n}}},\n}}\n"
        for n in range(count)
    ).encode()


def test_the_number_of_queries_does_not_grow_with_the_file():
    PaperFactory(doi="10.5555/3")

    def queries(count: int) -> int:
        Paper.objects.exclude(doi="10.5555/3").delete()
        with CaptureQueriesContext(connection) as captured:
            report = import_papers(data=_bibtex_of(count), filename="many.bib")
        assert len(report.created) == count - 1 and len(report.matched) == 1
        return len(captured)

    small, large = queries(20), queries(2_000)
    # bulk_create writes in batches: of 500 rows, or on SQLite as many as its 999
    # query parameters take (about 70 papers).
    assert large - small <= 2_000 // 60, (small, large)
    assert small <= 12


def test_an_issue_citing_a_paper_not_yet_here_shows_it_once_imported():
    issue = IssueFactory(body="Read [[arxiv:2201.03545]] this month.")
    assert issue.unknown_references == ["[[arxiv:2201.03545]]"]

    report = run("papers.bib")

    issue.refresh_from_db()
    assert report.issues_refreshed == 1
    assert issue.unknown_references == []
    assert "A ConvNet for the 2020s" in issue.body_html
    assert list(issue.papers.values_list("arxiv_id", flat=True)) == ["2201.03545"]
    assert Issue.objects.count() == 1


# ---- the command -----------------------------------------------------------------


def test_the_import_command_prints_the_report(capsys):
    call_command("import_papers", str(FIXTURES / "papers.bib"))

    out = capsys.readouterr().out
    assert "Read 55 entries (bibtex)." in out
    assert "Created 47 papers." in out
    assert "Already here, matched: 0 (0 had empty fields filled in)." in out
    assert "Refused: 8." in out
    assert "  line 387: it has no title; add one." in out
    assert Paper.objects.count() == 47


def test_the_import_command_with_a_format_and_a_refused_file(tmp_path):
    ris = tmp_path / "library.txt"
    ris.write_bytes((FIXTURES / "zotero.ris").read_bytes())
    call_command("import_papers", str(ris), "--format", "ris")
    assert Paper.objects.count() == 4

    bad = tmp_path / "latin1.bib"
    bad.write_bytes(b"@misc{a, title={M\xfcller}}")
    with pytest.raises(CommandError, match="Line 1 is not UTF-8.*Nothing was imported"):
        call_command("import_papers", str(bad))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_papers", str(tmp_path / "missing.bib"))
    assert Paper.objects.count() == 4
