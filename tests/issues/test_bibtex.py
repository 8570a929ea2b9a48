"""BibTeX of the kinds reference managers expect, with whole-word keys."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from newsletter.models import Publication
from tests.factories.issues import IssueFactory, PaperFactory

pytestmark = pytest.mark.django_db


def bibtex(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/x-bibtex")
    return response.content.decode()


def fields(entry: str) -> dict[str, str]:
    return dict(re.findall(r"^  (\w+) = \{(.*)\},$", entry, re.M))


def paper_entry(client, **paper) -> tuple[str, dict[str, str]]:
    paper = PaperFactory(**paper)
    text = bibtex(client, reverse("issues:paper_bibtex", args=[paper.slug]))
    return text.splitlines()[0], fields(text)


def test_an_arxiv_preprint_is_a_misc_entry_with_eprint_fields(client):
    head, entry = paper_entry(
        client,
        title="Chain-of-Thought Prompting Elicits Reasoning in Large Language Models",
        authors=["Jason Wei", "Xuezhi Wang", "Dale Schuurmans", "Denny Zhou"],
        year=2022, arxiv_id="2201.11903", venue="",
    )  # fmt: skip

    assert head == "@misc{wei2022chainofthought,"
    assert entry["eprint"] == "2201.11903"
    assert entry["archivePrefix"] == "arXiv"
    assert entry["howpublished"] == "arXiv preprint arXiv:2201.11903"
    assert entry["url"] == "https://arxiv.org/abs/2201.11903"
    assert "booktitle" not in entry and "journal" not in entry


def test_a_conference_paper_is_inproceedings_with_its_booktitle(client):
    head, entry = paper_entry(
        client, title="Denoising Diffusion Probabilistic Models",
        authors=["Jonathan Ho", "Ajay Jain", "Pieter Abbeel"], year=2020,
        arxiv_id="2006.11239", venue="NeurIPS",
    )  # fmt: skip

    assert head == "@inproceedings{ho2020denoising,"
    assert entry["booktitle"] == "NeurIPS"
    assert entry["eprint"] == "2006.11239"


def test_a_journal_article_with_a_doi_is_an_article(client):
    head, entry = paper_entry(
        client, title="Highly accurate protein structure prediction with AlphaFold",
        authors=["John Jumper", "Richard Evans", "Demis Hassabis"], year=2021,
        arxiv_id="", doi="10.1038/s41586-021-03819-2", venue="Nature",
    )  # fmt: skip

    assert head == "@article{jumper2021highly,"
    assert entry["journal"] == "Nature"
    assert entry["doi"] == "10.1038/s41586-021-03819-2"
    assert entry["url"] == "https://doi.org/10.1038/s41586-021-03819-2"


def test_a_journal_named_in_full_is_an_article_too(client):
    head, entry = paper_entry(
        client,
        title="Exploring the Limits of Transfer Learning with a Unified "
        "Text-to-Text Transformer",
        authors=["Colin Raffel", "Noam Shazeer"], year=2020, arxiv_id="1910.10683",
        venue="Journal of Machine Learning Research",
    )  # fmt: skip

    assert head == "@article{raffel2020exploring,"
    assert entry["journal"] == "Journal of Machine Learning Research"


def test_a_paper_with_only_a_doi_and_no_venue_is_misc(client):
    head, entry = paper_entry(
        client, title="A Dataset Released on Zenodo", authors=["Ada Lovelace"],
        year=2023, arxiv_id="", doi="10.5281/zenodo.1234567", venue="",
    )  # fmt: skip

    assert head == "@misc{lovelace2023dataset,"
    assert entry["doi"] == "10.5281/zenodo.1234567"
    assert "journal" not in entry and "eprint" not in entry


def test_an_issue_key_keeps_whole_words_of_its_slug(client):
    Publication.objects.update_or_create(pk=1, defaults={"name": "Gradient Notes"})
    IssueFactory(
        slug="instruction-tuning-notes-from-a-busy-spring",
        title="Instruction tuning notes from a busy spring",
        published=True,
        published_at=datetime(2023, 3, 14, 9, 30, 12, 345678, tzinfo=UTC),
    )

    text = bibtex(
        client,
        reverse(
            "issues:issue_bibtex", args=["instruction-tuning-notes-from-a-busy-spring"]
        ),
    )

    assert text.startswith("@misc{gradientnotes202303instructiontuningnotes,")
    assert "month = {mar}," in text
