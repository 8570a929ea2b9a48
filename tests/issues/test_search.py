"""Search: PostgreSQL full-text search in services mode, a word match on SQLite."""

import html
import re

import pytest
from django.db import connection
from django.urls import reverse

from tests.factories.issues import IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus():
    IssueFactory(
        title="Diffusion goes latent",
        slug="latent",
        published=True,
        body="Latent diffusion models run denoising in an autoencoder space.",
    )
    IssueFactory(
        title="Scaling laws",
        slug="scaling",
        published=True,
        body="Compute-optimal training balances parameters and tokens.",
    )
    IssueFactory(title="Unpublished diffusion", slug="draft", body="diffusion draft")
    PaperFactory(
        title="High-Resolution Image Synthesis with Latent Diffusion Models",
        authors=["Robin Rombach", "Björn Ommer"],
        arxiv_id="2112.10752",
    )
    PaperFactory(title="Training Compute-Optimal Large Language Models",
                 authors=["Jordan Hoffmann"], arxiv_id="2203.15556")  # fmt: skip


def _search(client, q):
    response = client.get(reverse("issues:search"), {"q": q})
    assert response.status_code == 200
    return (
        [i.slug for i in response.context["issues"]],
        [p.arxiv_id for p in response.context["papers"]],
        response,
    )


def test_search_finds_issues_and_papers_by_words(client, corpus):
    issues, papers, response = _search(client, "diffusion")
    assert issues == ["latent"]
    assert papers == ["2112.10752"]
    assert "<mark>" in response.content.decode()


def test_search_finds_papers_by_author_and_arxiv_id(client, corpus):
    assert _search(client, "Rombach")[1] == ["2112.10752"]
    assert _search(client, "2203.15556")[1] == ["2203.15556"]


def test_search_matches_every_word(client, corpus):
    assert _search(client, "latent autoencoder")[0] == ["latent"]
    assert _search(client, "latent tokens")[0] == []


def test_search_on_postgresql_understands_word_forms(client, corpus):
    # Stemming is what full-text search adds over a substring match.
    stemmed = _search(client, "balanced parameter")[0]
    if connection.vendor == "postgresql":
        assert stemmed == ["scaling"]
    else:
        assert stemmed == []  # the SQLite fallback matches words as written


def test_empty_and_hostile_queries_are_harmless(client, corpus):
    assert _search(client, "")[:2] == ([], [])
    issues, papers, response = _search(client, '<script>alert(1)</script> & | ! "')
    assert "<script>alert(1)" not in response.content.decode()
    _search(client, "x" * 5000)


@pytest.fixture
def issue_with_headings_and_a_card():
    PaperFactory(
        slug="convnext", title="A ConvNet for the 2020s", venue="CVPR", year=2022,
        authors=["Zhuang Liu", "Hanzi Mao"], arxiv_id="2201.03545",
        code_url="https://github.com/facebookresearch/ConvNeXt",
    )  # fmt: skip
    return IssueFactory(
        slug="backbones",
        published=True,
        body=(
            "Superconvolutionalization " * 6 + "\n\n## Backbones\n\n"
            "[[paper:convnext]]\n\n## Results\n\nMore words about transformers.\n"
        ),
    )


def _snippet_text(response) -> str:
    (issue,) = response.context["issues"]
    return html.unescape(re.sub(r"</?mark>", "", issue.snippet_html))


def test_snippets_start_at_a_word_and_hold_no_heading_permalink(
    client, issue_with_headings_and_a_card
):
    issues, _, response = _search(client, "ConvNet")
    snippet = _snippet_text(response)
    text = issue_with_headings_and_a_card.public_text

    assert issues == ["backbones"]
    assert "#" not in snippet and "#" not in text
    assert "code Results More" in snippet
    words = set(text.split())
    assert [w for w in snippet.split() if w != "…" and w not in words] == []


def test_a_paper_cards_title_authors_and_links_do_not_run_together(
    client, issue_with_headings_and_a_card
):
    snippet = _snippet_text(_search(client, "ConvNet")[2])

    assert re.search(r"for the 2020s\W+Zhuang Liu", snippet), snippet
    assert re.search(r"CVPR 2022\W+arXiv:2201\.03545", snippet), snippet


def test_the_issue_description_holds_no_heading_permalink(
    client, issue_with_headings_and_a_card
):
    page = client.get(issue_with_headings_and_a_card.get_absolute_url())
    description = re.search(
        r'<meta name="description" content="([^"]*)"', page.content.decode()
    ).group(1)

    assert description.startswith("Superconvolutionalization")
    assert "#" not in description and "Backbones A ConvNet for the 2020s" in description


def test_the_search_page_has_a_description(client, db):
    page = client.get(reverse("issues:search")).content.decode()

    assert re.search(r'<meta name="description" content="Search [^"]+">', page)
