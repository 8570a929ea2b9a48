"""Paper export as BibTeX or CSL-JSON, streamed: every paper, or one year's.

Unlike the reader's BibTeX download (bibtex.py), which is made to cite with, this
export is made to be imported again, here or in a reference manager: every
character of a title or a name survives the trip (LaTeX's special characters are
escaped, not dropped), and the url field is the paper's own address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from django.db.models import F, QuerySet

from .bibtex import citation_key, is_journal_venue
from .models import Paper

EXPORT_FORMATS = {
    "bibtex": ("bib", "application/x-bibtex; charset=utf-8"),
    "csl": ("json", "application/json; charset=utf-8"),
}
_CHUNK = 1000

# LaTeX's special characters, written so that a LaTeX decoder gives them back.
_LATEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "`": "{`}",
}
_LATEX_RE = re.compile("|".join(re.escape(char) for char in _LATEX))
# Ligatures TeX would make: -- (a dash) and '' (a closing quote).
_LIGATURE = re.compile(r"([-'])(?=\1)")


def latex_escape(value: str) -> str:
    """Return text as a BibTeX value that reads back as the same text."""
    value = " ".join(str(value).split())
    value = _LATEX_RE.sub(lambda match: _LATEX[match.group()], value)
    return _LIGATURE.sub(r"\1{}", value)


def _verbatim(value: str) -> str:
    # A DOI or an address: braces would unbalance the entry, so percent-encoded.
    return value.replace("{", "%7B").replace("}", "%7D").strip()


def _bibtex_name(name: str) -> str:
    escaped = latex_escape(name)
    # A comma or a lone "and" would split or reorder the name: keep it whole.
    if "," in name or re.search(r"\band\b", name, re.IGNORECASE):
        return "{" + escaped + "}"
    return escaped


def bibtex_entry(paper: Paper, *, key: str) -> str:
    """Return the paper's entry for an export."""
    fields: list[tuple[str, str]] = [
        ("title", latex_escape(paper.title)),
        ("author", " and ".join(_bibtex_name(name) for name in paper.authors)),
        ("year", str(paper.year or "")),
    ]
    if paper.venue and is_journal_venue(paper.venue):
        kind = "article"
        fields.append(("journal", latex_escape(paper.venue)))
    elif paper.venue:
        kind = "inproceedings"
        fields.append(("booktitle", latex_escape(paper.venue)))
    else:
        kind = "misc"
    if paper.arxiv_id:
        fields += [("eprint", _verbatim(paper.arxiv_id)), ("archivePrefix", "arXiv")]
    fields += [("doi", _verbatim(paper.doi)), ("url", _verbatim(paper.url))]
    lines = [f"@{kind}{{{key},"]
    lines += [f"  {name} = {{{value}}}," for name, value in fields if value]
    return "\n".join(lines) + "\n}\n"


def _keys(papers: Iterable[Paper]) -> Iterator[tuple[Paper, str]]:
    seen: dict[str, int] = {}
    for paper in papers:
        key = citation_key(paper)
        count = seen.get(key, 0)
        seen[key] = count + 1
        yield paper, key if not count else f"{key}-{count + 1}"


def _sorted(papers: QuerySet[Paper]) -> Iterator[Paper]:
    # Papers without a year last, on every database (PostgreSQL and SQLite differ).
    ordered = papers.order_by(F("year").asc(nulls_last=True), "pk")
    return ordered.iterator(chunk_size=_CHUNK)


def iter_bibtex(papers: QuerySet[Paper]) -> Iterator[str]:
    """Yield the papers' BibTeX entries one by one, keys made unique."""
    yield "% Papers exported from Quire, in UTF-8.\n"
    for paper, key in _keys(_sorted(papers)):
        yield "\n" + bibtex_entry(paper, key=key)


def _csl_name(name: str) -> dict[str, str]:
    given, _, family = name.rpartition(" ")
    return {"family": family, "given": given} if given else {"literal": name}


def csl_item(paper: Paper, *, key: str) -> dict:
    """Return the paper as a CSL-JSON item, as Zotero writes one."""
    item: dict = {"id": key, "title": paper.title}
    if paper.venue:
        kind = (
            "article-journal" if is_journal_venue(paper.venue) else "paper-conference"
        )
        item["container-title"] = paper.venue
    else:
        kind = "article"
    item["type"] = kind
    if paper.authors:
        item["author"] = [_csl_name(name) for name in paper.authors]
    if paper.year:
        item["issued"] = {"date-parts": [[paper.year]]}
    if paper.arxiv_id:
        # Zotero's form for an arXiv preprint.
        item["number"] = f"arXiv:{paper.arxiv_id}"
        if not paper.venue:
            item["publisher"] = "arXiv"
    if paper.doi:
        item["DOI"] = paper.doi
    if paper.url:
        item["URL"] = paper.url
    return item


def iter_csl(papers: QuerySet[Paper]) -> Iterator[str]:
    """Yield the papers as one CSL-JSON list, an item at a time."""
    first = True
    for paper, key in _keys(_sorted(papers)):
        text = json.dumps(csl_item(paper, key=key), ensure_ascii=False, indent=2)
        yield ("[\n" if first else ",\n") + text
        first = False
    yield "[]\n" if first else "\n]\n"


def iter_export(papers: QuerySet[Paper], format: str) -> Iterator[str]:
    """Yield the papers in an export format: bibtex or csl."""
    return iter_bibtex(papers) if format == "bibtex" else iter_csl(papers)
