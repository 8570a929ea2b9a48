"""Cite this issue: BibTeX, RIS and CSL-JSON files, the APA reference, the DOI."""

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from pybtex.database import parse_string

from issues.models import Issue
from newsletter.models import Publication
from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db

PAID_WORDS = "SUPPORTERS-ONLY-SENTENCE"
WHEN = datetime(2024, 3, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def publication(db):
    publication = Publication.load()
    publication.name = "The Gradient Notes"
    publication.author_name = "Jane Q. Doe"
    publication.save()
    return publication


@pytest.fixture
def issue(publication):
    return IssueFactory(
        slug="scaling-laws", title="Scaling laws, revisited", published=True,
        published_at=WHEN, subtitle="What changed since Chinchilla.",
        doi="https://doi.org/10.59350/ABCDE-12345", access=Issue.Access.PAID,
        body=f"Free opening.\n\n<!-- paywall -->\n\n{PAID_WORDS}",
    )  # fmt: skip


def download(url: str, content_type: str) -> str:
    response = Client().get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response["Content-Disposition"].startswith("attachment;")
    return response.content.decode()


def test_the_bibtex_file_parses_and_carries_the_doi(issue, settings):
    text = download(
        reverse("issues:issue_cite_bib", args=[issue.slug]), "text/x-bibtex"
    )

    entries = parse_string(text, "bibtex").entries
    assert len(entries) == 1
    ((key, entry),) = entries.items()
    assert key == "thegradientnotes202403scalinglaws"
    assert entry.type == "misc"
    assert entry.fields["title"] == "Scaling laws, revisited"
    assert entry.fields["doi"] == "10.59350/ABCDE-12345"
    assert entry.fields["howpublished"] == "The Gradient Notes"
    assert entry.fields["url"] == f"{settings.SITE_URL}/issues/scaling-laws/"
    assert str(entry.persons["author"][0]) == "Doe, Jane Q."


def test_the_ris_record_has_its_fields_one_a_line(issue, settings):
    text = download(
        reverse("issues:issue_cite_ris", args=[issue.slug]),
        "application/x-research-info-systems",
    )

    lines = text.split("\r\n")
    assert lines[0] == "TY  - BLOG"
    assert lines[-2:] == ["ER  - ", ""]
    fields = dict(line.split("  - ", 1) for line in lines[:-2])
    assert fields == {
        "TY": "BLOG",
        "TI": "Scaling laws, revisited",
        "AU": "Doe, Jane Q.",
        "PY": "2024",
        "DA": "2024/03/05/",
        "T2": "The Gradient Notes",
        "UR": f"{settings.SITE_URL}/issues/scaling-laws/",
        "DO": "10.59350/ABCDE-12345",
        "AB": "What changed since Chinchilla.",
    }


def test_the_csl_json_file_is_one_valid_item(issue, settings):
    text = download(
        reverse("issues:issue_cite_json", args=[issue.slug]),
        "application/vnd.citationstyles.csl+json",
    )

    (item,) = json.loads(text)
    assert item == {
        "id": "scaling-laws",
        "type": "post-weblog",
        "title": "Scaling laws, revisited",
        "author": [{"family": "Doe", "given": "Jane Q."}],
        "container-title": "The Gradient Notes",
        "issued": {"date-parts": [[2024, 3, 5]]},
        "URL": f"{settings.SITE_URL}/issues/scaling-laws/",
        "abstract": "What changed since Chinchilla.",
        "DOI": "10.59350/ABCDE-12345",
    }


def test_the_issue_page_cites_it_in_apa_style_with_its_doi(issue):
    html = Client().get(issue.get_absolute_url()).content.decode()

    assert '<details class="cite-issue" id="cite">' in html
    assert "<summary>Cite this issue</summary>" in html
    reference = re.search(r'<p class="cite-reference"[^>]*>(.*?)</p>', html).group(1)
    assert reference == (
        "Doe, J. Q. (2024, March 5). Scaling laws, revisited. "
        "<i>The Gradient Notes</i>. https://doi.org/10.59350/ABCDE-12345"
    )
    for fmt in ("bib", "ris", "json"):
        assert f'href="/issues/scaling-laws/cite.{fmt}"' in html


def test_the_issue_page_shows_its_doi_in_the_page_meta_and_json_ld(issue):
    html = Client().get(issue.get_absolute_url()).content.decode()

    doi_url = "https://doi.org/10.59350/ABCDE-12345"
    assert f'<a href="{doi_url}">{doi_url}</a>' in html
    assert '<meta name="citation_doi" content="10.59350/ABCDE-12345">' in html
    ld = json.loads(
        re.search(
            r'<script type="application/ld\+json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert ld["identifier"] == {
        "@type": "PropertyValue", "propertyID": "DOI",
        "value": "10.59350/ABCDE-12345", "url": doi_url,
    }  # fmt: skip
    assert ld["sameAs"] == doi_url


def test_an_issue_without_a_doi_says_nothing_of_one(publication):
    issue = IssueFactory(published=True)
    html = Client().get(issue.get_absolute_url()).content.decode()
    ris = Client().get(reverse("issues:issue_cite_ris", args=[issue.slug]))

    assert "citation_doi" not in html
    assert "doi.org" not in html
    assert "DO  - " not in ris.content.decode()
    assert (
        "DOI"
        not in json.loads(
            Client().get(reverse("issues:issue_cite_json", args=[issue.slug])).content
        )[0]
    )


def test_a_paid_issue_is_cited_without_a_word_of_its_paid_part(issue):
    for name in ("issue_cite_bib", "issue_cite_ris", "issue_cite_json"):
        text = Client().get(reverse(f"issues:{name}", args=[issue.slug])).content
        assert PAID_WORDS.encode() not in text
        assert b"Free opening" not in text  # metadata only, not even the free part
    page = Client().get(issue.get_absolute_url()).content.decode()
    assert PAID_WORDS not in page


def test_the_rss_guid_of_an_issue_with_a_doi_is_its_doi_url(issue, settings):
    other = IssueFactory(slug="no-doi", published=True)
    rss = ET.fromstring(Client().get("/feed/").content)  # noqa: S314 - our own feed
    guids = {item.findtext("link"): item.find("guid") for item in rss.iter("item")}

    with_doi = guids[f"{settings.SITE_URL}/issues/scaling-laws/"]
    assert with_doi.text == "https://doi.org/10.59350/ABCDE-12345"
    assert with_doi.get("isPermaLink") == "false"
    without = guids[f"{settings.SITE_URL}{other.get_absolute_url()}"]
    assert without.text == f"{settings.SITE_URL}{other.get_absolute_url()}"
    assert without.get("isPermaLink") == "true"


def test_the_atom_id_of_an_issue_with_a_doi_is_its_doi_url(issue):
    atom = ET.fromstring(Client().get("/feed/atom/").content)  # noqa: S314 - ours
    ns = {"a": "http://www.w3.org/2005/Atom"}
    ids = [
        entry.findtext("a:id", namespaces=ns) for entry in atom.iterfind("a:entry", ns)
    ]
    assert "https://doi.org/10.59350/ABCDE-12345" in ids


@pytest.mark.parametrize(
    "value", ["11.1234/abc", "10.12/abc", "10.1234/", "10.1234/a b", "doi 10.1234/x",
              "10.1234/<script>", "javascript:alert(1)"],
)  # fmt: skip
def test_a_malformed_doi_is_refused(publication, value):
    issue = IssueFactory.build(title="T", slug="t", doi=value)
    with pytest.raises(ValidationError) as error:
        issue.full_clean(exclude=["newsletter"])
    assert "doi" in error.value.message_dict


def test_a_pasted_doi_link_is_stored_bare(publication):
    issue = IssueFactory(doi="https://dx.doi.org/10.1234/ABC.def")
    issue.full_clean(exclude=["newsletter"])
    issue.refresh_from_db()
    assert issue.doi == "10.1234/ABC.def"


def test_two_issues_cannot_share_a_doi_but_many_have_none(publication):
    from django.db import IntegrityError, transaction

    IssueFactory(doi="10.1234/one")
    IssueFactory(doi="")
    IssueFactory(doi="")
    with pytest.raises(IntegrityError), transaction.atomic():
        IssueFactory(doi="10.1234/one")
    with pytest.raises(IntegrityError), transaction.atomic():
        IssueFactory(doi="10.1234/ONE")


def test_hostile_metadata_stays_text_in_every_format(publication):
    publication.author_name = "Eve <img src=x onerror=alert(1)>"
    publication.save()
    issue = IssueFactory(
        slug="hostile", published=True,
        title='Nice</p><script>alert(1)</script>\nER  - \nTY  - JOUR "}',
    )  # fmt: skip

    page = Client().get(issue.get_absolute_url()).content.decode()
    reference = re.search(r'<p class="cite-reference"[^>]*>(.*?)</p>', page).group(1)
    assert "<script>" not in reference and "<img" not in reference
    assert "&lt;script&gt;" in reference
    ris = Client().get(reverse("issues:issue_cite_ris", args=[issue.slug]))
    lines = ris.content.decode().split("\r\n")
    # The line break in the title cannot end the record or start another.
    assert [line for line in lines if line.startswith(("ER", "TY"))] == [
        "TY  - BLOG", "ER  - "
    ]  # fmt: skip
    bib = Client().get(reverse("issues:issue_cite_bib", args=[issue.slug]))
    assert len(parse_string(bib.content.decode(), "bibtex").entries) == 1


def test_the_reference_is_formatted_once_per_issue_version(issue, monkeypatch):
    from issues import citing

    citing._format.cache_clear()
    Client().get(issue.get_absolute_url())
    Client(HTTP_COOKIE="sessionid=x").get(issue.get_absolute_url())  # not shared
    Client(HTTP_COOKIE="sessionid=y").get(issue.get_absolute_url())
    info = citing._format.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_unknown_issue_and_draft_citations_are_404(publication):
    draft = IssueFactory(slug="draft-one")
    assert Client().get("/issues/nope/cite.bib").status_code == 404
    assert Client().get(f"/issues/{draft.slug}/cite.ris").status_code == 404
    assert Client().get(f"/issues/{draft.slug}/cite.json").status_code == 404


def test_the_admin_form_refuses_a_doi_another_issue_has(publication):
    from issues.admin import IssueAdminForm
    from tests.factories.issues import issue_admin_form

    IssueFactory(doi="10.1234/taken")
    form = IssueAdminForm(data=issue_admin_form(doi="https://doi.org/10.1234/TAKEN"))

    assert not form.is_valid()
    assert "Another issue already has this DOI." in str(form.errors)
