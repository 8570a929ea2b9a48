"""Search: PostgreSQL full-text search in services mode, a word match on SQLite."""

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
