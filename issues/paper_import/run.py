"""Importing papers in bulk: read and check in Python, write set-based in SQL.

The whole file is read and every entry checked before anything is written. One
query loads the identifiers of the papers Quire has (to match arXiv ids, DOIs, and
titles of papers without either) and one their slugs; new papers go in with
bulk_create, filled-in ones with bulk_update, all in one transaction. No query per
entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from .. import services
from ..content_version import content_changed
from ..identifiers import normalize_arxiv_id, normalize_doi, validate_arxiv_id
from ..models import Issue, Paper
from .formats import READERS, Entry, EntryError, ImportFailed, Refused, guess_format

# A file larger than this is refused before it is read (a 10,000-entry BibTeX
# file is about 3 MB).
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_AUTHORS = 1000
_DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(?P<id>.+)$", re.IGNORECASE)
_VERSION = re.compile(r"v\d+$")
_YEAR = re.compile(r"^\s*(\d{4})\b")
# Paper fields an import fills in on a paper already here when they are empty.
FILLED_FIELDS = ["authors", "year", "venue", "arxiv_id", "doi", "url"]


@dataclass
class PaperImportReport:
    """What an import did, entry by entry, with the line each starts on."""

    format: str
    filename: str = ""
    entries: int = 0
    created: list[tuple[int, str]] = field(default_factory=list)
    # (line, title of the paper here, its id, the fields filled in)
    matched: list[tuple[int, str, int, list[str]]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    issues_refreshed: int = 0

    @property
    def filled(self) -> int:
        return sum(1 for *_rest, fields in self.matched if fields)

    def summary(self) -> str:
        """Return the report as a few lines of text."""
        lines = [
            f"Read {self.entries} entries ({self.format}).",
            f"Created {len(self.created)} papers.",
            f"Already here, matched: {len(self.matched)} "
            f"({self.filled} had empty fields filled in).",
            f"Refused: {len(self.refused)}.",
        ]
        lines += [f"  line {line}: {why}" for line, why in self.refused]
        return "\n".join(lines)


@dataclass(slots=True)
class _Checked:
    line: int
    title: str
    authors: list[str]
    year: int | None
    venue: str
    arxiv_id: str
    doi: str
    url: str

    def keys(self) -> list[tuple[str, str]]:
        """Return what identifies this paper: its ids, else its title and year."""
        keys = []
        if self.arxiv_id:
            keys.append(("arXiv id", _arxiv_key(self.arxiv_id)))
        if self.doi:
            keys.append(("DOI", self.doi.lower()))
        if not keys:
            keys.append(("title and year", _title_key(self.title, self.year)))
        return keys


def _arxiv_key(arxiv_id: str) -> str:
    return _VERSION.sub("", arxiv_id).lower()


def _title_key(title: str, year: int | None) -> str:
    return f"{' '.join(title.casefold().split())}|{year or ''}"


_url_validator = URLValidator(schemes=["http", "https"])


def _check(entry: Entry) -> _Checked:
    """Return the entry as a paper's values, or raise EntryError saying what to fix."""
    title = entry.title.strip()
    if not title:
        raise EntryError("it has no title; add one.")
    if len(title) > 500:
        raise EntryError(
            f"its title is {len(title):,} characters long; Quire keeps titles of up "
            "to 500. Shorten it."
        )
    if len(entry.authors) > MAX_AUTHORS:
        raise EntryError(f"it has more than {MAX_AUTHORS} authors; keep the first.")
    for name in entry.authors:
        if len(name) > 200:
            raise EntryError(
                f"an author's name is {len(name):,} characters long (at most 200); "
                "check that the authors are separated by 'and'."
            )
    year = None
    if entry.year.strip():
        found = _YEAR.match(entry.year)
        if found is None or not 1000 <= int(found.group(1)) <= 2999:
            raise EntryError(
                f"its year {entry.year[:20]!r} is not a year; write four digits "
                "(2024) or leave it out."
            )
        year = int(found.group(1))
    venue = entry.venue.strip()
    if len(venue) > 200:
        raise EntryError(
            f"its venue (journal or booktitle) is {len(venue):,} characters long; "
            "at most 200. Shorten it."
        )
    doi = normalize_doi(entry.doi)
    arxiv_id = normalize_arxiv_id(entry.arxiv_id)
    url = ""
    for address in entry.urls:
        as_arxiv, as_doi = normalize_arxiv_id(address), normalize_doi(address)
        if as_arxiv != address.strip():  # an arxiv.org link: it carries the id
            arxiv_id = arxiv_id or as_arxiv
        elif as_doi != address.strip():  # a doi.org link
            doi = doi or as_doi
        elif not url:
            url = address.strip()
    found = _ARXIV_DOI.match(doi)
    if found is not None and not arxiv_id:
        arxiv_id = found.group("id")
    if doi and (len(doi) > 200 or not _DOI_RE.match(doi)):
        raise EntryError(
            f"its DOI {doi[:60]!r} is not a DOI (they look like "
            "10.1109/CVPR52688.2022.01167); fix the doi field or remove it."
        )
    if arxiv_id:
        try:
            validate_arxiv_id(arxiv_id)
        except ValidationError:
            raise EntryError(
                f"its arXiv id {arxiv_id[:60]!r} is not an arXiv id (such as "
                "2201.03545 or hep-th/9901001); fix the eprint field or remove it."
            ) from None
    if url:
        try:
            if len(url) > 500:
                raise ValidationError("too long")
            _url_validator(url)
        except ValidationError:
            raise EntryError(
                f"its url {url[:60]!r} is not an http(s) address of at most 500 "
                "characters; fix the url field or remove it."
            ) from None
    return _Checked(entry.line, title, entry.authors, year, venue, arxiv_id, doi, url)


def _known_papers() -> dict[tuple[str, str], int]:
    """Return every paper's identifying keys, to its id (one query)."""
    known: dict[tuple[str, str], int] = {}
    rows = Paper.objects.values_list("pk", "arxiv_id", "doi", "title", "year")
    for pk, arxiv_id, doi, title, year in rows.iterator(chunk_size=5000):
        if arxiv_id:
            known.setdefault(("arXiv id", _arxiv_key(arxiv_id)), pk)
        if doi:
            known.setdefault(("DOI", doi.lower()), pk)
        known.setdefault(("title and year", _title_key(title, year)), pk)
    return known


class _Slugs:
    """Unique slugs for many new papers, from one query of the slugs taken."""

    def __init__(self) -> None:
        self.taken = set(Paper.objects.values_list("slug", flat=True))

    def make(self, title: str) -> str:
        # As models.unique_slug makes them, without its query.
        base = slugify(title)[:192].strip("-") or "untitled"
        slug, n = base, 2
        while slug in self.taken:
            slug, n = f"{base}-{n}", n + 1
        self.taken.add(slug)
        return slug


def _fill(paper: Paper, checked: _Checked) -> list[str]:
    """Fill the paper's empty fields from the entry; return the fields filled."""
    filled = []
    for name in FILLED_FIELDS:
        value = getattr(checked, name)
        if value and not getattr(paper, name):
            setattr(paper, name, value)
            filled.append(name)
    return filled


def _refresh_issues(filled_ids: list[int], created: bool) -> int:
    """Render again the issues whose cards or references the import changed."""
    query = Q(citations__paper_id__in=filled_ids) if filled_ids else Q(pk__in=[])
    if created:  # an [[arxiv:…]] that named no paper may name one now
        query |= ~Q(unknown_references=[])
    issues = list(Issue.objects.filter(query).distinct())
    for issue in issues:
        services.record_citations(issue=issue, rendered=issue.render())
    Issue.objects.bulk_update(issues, services.RENDERED_ISSUE_FIELDS)
    return len(issues)


def import_papers(
    *, data: bytes, format: str = "auto", filename: str = "", fill_empty: bool = True
) -> PaperImportReport:
    """Import papers from a BibTeX, RIS or CSL-JSON file and return what happened.

    An entry whose arXiv id or DOI (or, without either, title and year) names a
    paper already here is matched: that paper is kept, and with fill_empty its
    empty fields are filled in from the entry (nothing is overwritten). Raises
    ImportFailed, importing nothing, when the file as a whole cannot be read;
    a broken entry is refused with its line while the rest imports.
    """
    if format != "auto" and format not in READERS:
        raise ImportFailed(f"Unknown format {format!r}; use bibtex, ris or csl.")
    if len(data) > MAX_FILE_BYTES:
        raise ImportFailed(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; at most "
            f"{MAX_FILE_BYTES // 1024 // 1024} MB can be imported at once. Split it."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as why:
        line = data.count(b"\n", 0, why.start) + 1
        raise ImportFailed(
            f"Line {line} is not UTF-8 text; save the file as UTF-8 (Zotero and "
            "JabRef can) and import again."
        ) from None
    if not text.strip():
        raise ImportFailed("The file is empty.")
    if format == "auto":
        format = guess_format(filename, text)
    report = PaperImportReport(format=format, filename=filename)
    try:
        rows = list(READERS[format](text))
    except RecursionError:
        raise ImportFailed("The file is nested too deep to read.") from None
    known = _known_papers()
    seen: dict[tuple[str, str], int] = {}
    new: list[_Checked] = []
    matched: dict[int, list[_Checked]] = {}
    matched_lines: list[tuple[int, int]] = []
    for row in rows:
        report.entries += 1
        if isinstance(row, Refused):
            report.refused.append((row.line, row.reason))
            continue
        try:
            checked = _check(row)
        except EntryError as why:
            report.refused.append((row.line, str(why)))
            continue
        keys = checked.keys()
        repeat = next(((key, seen[key]) for key in keys if key in seen), None)
        if repeat is not None:
            (kind, _value), first = repeat
            report.refused.append(
                (
                    checked.line,
                    f"it repeats the paper on line {first} (the same {kind}); "
                    "only the first was imported. Remove one of them.",
                )
            )
            continue
        for key in keys:
            seen[key] = checked.line
        pk = next((known[key] for key in keys if key in known), None)
        if pk is None:
            new.append(checked)
        else:
            matched.setdefault(pk, []).append(checked)
            matched_lines.append((checked.line, pk))
    with transaction.atomic():
        slugs = _Slugs()
        papers = [
            Paper(
                title=c.title,
                slug=slugs.make(c.title),
                authors=c.authors,
                year=c.year,
                venue=c.venue,
                arxiv_id=c.arxiv_id,
                doi=c.doi,
                url=c.url,
            )  # fmt: skip
            for c in new
        ]
        Paper.objects.bulk_create(papers, batch_size=500)
        report.created = [(c.line, c.title) for c in new]
        here = Paper.objects.in_bulk(list(matched)) if matched else {}
        filled: dict[int, list[str]] = {}
        if fill_empty:
            for pk, entries in matched.items():
                for checked in entries:
                    filled.setdefault(pk, []).extend(_fill(here[pk], checked))
            changed = [here[pk] for pk, names in filled.items() if names]
            Paper.objects.bulk_update(changed, FILLED_FIELDS, batch_size=500)
        report.matched = [
            (line, here[pk].title, pk, filled.get(pk, [])) for line, pk in matched_lines
        ]
        if papers or any(filled.values()):
            report.issues_refreshed = _refresh_issues(
                [pk for pk, names in filled.items() if names], created=bool(papers)
            )
            content_changed()
    # A paper matched by two entries lists its filled fields on its first line.
    for index, (line, title, pk, names) in enumerate(report.matched):
        if names and any(m[2] == pk for m in report.matched[:index]):
            report.matched[index] = (line, title, pk, [])
    report.refused.sort()
    return report
