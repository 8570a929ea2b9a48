"""Reading reference files: BibTeX, RIS and CSL-JSON (Zotero's three exports).

Each reader turns the file's text into Entry rows, one per reference, in the file's
order and with the line it starts on, or Refused rows for a reference that cannot
be read at all (an unclosed brace, a record with no end). Values come out as the
file gives them, LaTeX decoded to Unicode; checking them is run.py's work.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

import bibtexparser
import rispy
from bibtexparser import model as bib
from bibtexparser.middlewares.names import (
    InvalidNameError,
    parse_single_name_into_parts,
    split_multiple_persons_names,
)
from pylatexenc.latex2text import LatexNodes2Text

from ..rendering.limits import brace_depth

FORMATS = {
    "auto": "Guess from the file name and contents",
    "bibtex": "BibTeX (.bib)",
    "ris": "RIS (.ris), e.g. Zotero's or Mendeley's export",
    "csl": "CSL-JSON (.json), e.g. Zotero's export",
}

# Checked before any value is decoded: a field longer than this is refused (and
# never reaches the LaTeX decoder), and so is one with braces nested deeper.
MAX_FIELD_CHARS = 10_000
MAX_BRACE_DEPTH = 10


class ImportFailed(ValueError):
    """The file as a whole cannot be read; nothing was imported."""


class EntryError(ValueError):
    """This entry cannot be imported; str() says why and what to do."""


@dataclass(slots=True)
class Entry:
    """One reference as the file gives it (LaTeX already decoded)."""

    line: int
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: str = ""
    venue: str = ""
    arxiv_id: str = ""
    doi: str = ""
    # Every address the file gives; an arXiv or doi.org one may carry the id.
    urls: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Refused:
    line: int
    reason: str


def guess_format(name: str, text: str) -> str:
    """Return bibtex, ris or csl for a file, from its extension or else its text."""
    lowered = name.lower()
    for ext, fmt in ((".bib", "bibtex"), (".ris", "ris"), (".json", "csl")):
        if lowered.endswith(ext):
            return fmt
    start = text.lstrip()[:1]
    if start in "[{":
        return "csl"
    if re.search(r"^TY  - ", text[:10_000], re.MULTILINE):
        return "ris"
    return "bibtex"


def _check_size(name: str, value: str) -> None:
    if len(value) > MAX_FIELD_CHARS:
        raise EntryError(
            f"its {name} is {len(value):,} characters long; a field may have at "
            f"most {MAX_FIELD_CHARS:,} (is a brace or quote left open?). Shorten it."
        )


# LaTeX as reference managers write it: accents, a few letters, escaped specials,
# dashes and quotes. Read by one regular expression; anything else (a macro such as
# \emph, math) goes to pylatexenc, which is thorough but some 100 times slower.
_ACCENTS = {
    '"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303",
    "=": "\u0304", ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306",
    "H": "\u030b", "k": "\u0328", "r": "\u030a", "d": "\u0323",
}  # fmt: skip
_LETTERS = {
    "ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å",
    "o": "ø", "O": "Ø", "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ",
}  # fmt: skip
_WORDS = {"textbackslash": "\\", "textasciitilde": "~", "textasciicircum": "^"}
_LIGATURES = {"---": "—", "--": "–", "``": "“", "''": "”", "~": " "}
_BASE = r"\\[ij]|[A-Za-z]"
_TOKEN = re.compile(
    rf"""\\(?P<acc>["'`^~=.])\s*(?:\{{\s*(?P<b1>{_BASE})\s*\}}|(?P<b2>{_BASE}))
    |\\(?P<lacc>[cvuHkrd])(?:\s*\{{\s*(?P<b3>{_BASE})\s*\}}|\s+(?P<b4>[A-Za-z]))
    |\\(?P<letter>ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z])\s*
    |\\(?P<esc>[&%_\#$])
    |\\(?P<brace>[{{}}])
    |\\(?P<word>textbackslash|textasciitilde|textasciicircum)(?![A-Za-z])\s*(?:\{{\}})?
    |(?P<lig>---|--|``|''|~)
    |(?P<other>\\|\$)""",
    re.VERBOSE,
)
# Escaped braces, kept apart while the grouping braces are taken out.
_OPEN, _CLOSE = "\x00", "\x01"
# An unescaped % starts a LaTeX comment, which would swallow the rest of a value.
_BARE_PERCENT = re.compile(r"(?<!\\)%")


class _NeedsDecoder(Exception):  # noqa: N818 - a signal, not an error
    pass


def _token(match: re.Match) -> str:
    kind = match.lastgroup
    if kind in ("acc", "lacc", "b1", "b2", "b3", "b4"):
        accent = match.group("acc") or match.group("lacc")
        base = next(b for b in match.group("b1", "b2", "b3", "b4") if b)
        base = {"\\i": "i", "\\j": "j"}.get(base, base)
        return unicodedata.normalize("NFC", base + _ACCENTS[accent])
    if kind == "letter":
        return _LETTERS[match.group("letter")]
    if kind == "esc":
        return match.group("esc")
    if kind == "brace":
        return _OPEN if match.group("brace") == "{" else _CLOSE
    if kind == "word":
        return _WORDS[match.group("word")]
    if kind == "lig":
        return _LIGATURES[match.group("lig")]
    raise _NeedsDecoder


def _quick_latex(value: str) -> str:
    """Return value decoded, or raise _NeedsDecoder for LaTeX beyond the table."""
    value = _TOKEN.sub(_token, value.replace(_OPEN, "").replace(_CLOSE, ""))
    value = value.replace("{", "").replace("}", "")
    return value.replace(_OPEN, "{").replace(_CLOSE, "}")


class _Latex:
    """LaTeX to Unicode, for one file (pylatexenc's decoder made once, if needed)."""

    def __init__(self) -> None:
        self._decoder: LatexNodes2Text | None = None

    def text(self, name: str, value: str) -> str:
        """Return value decoded to plain Unicode text, whitespace collapsed."""
        _check_size(name, value)
        if brace_depth(value) > MAX_BRACE_DEPTH:
            raise EntryError(
                f"its {name} has braces nested more than {MAX_BRACE_DEPTH} deep; "
                "remove the extra braces."
            )
        try:
            value = _quick_latex(value)
        except _NeedsDecoder:
            value = self._decode(name, value)
        return " ".join(value.replace("\xa0", " ").split())

    def _decode(self, name: str, value: str) -> str:
        if self._decoder is None:
            self._decoder = LatexNodes2Text(math_mode="verbatim")
        try:
            return self._decoder.latex_to_text(_BARE_PERCENT.sub(r"\\%", value))
        except (RecursionError, ValueError, IndexError):
            raise EntryError(
                f"its {name} is not LaTeX that can be read; write it as plain text."
            ) from None


# What BibTeX writes escaped in a DOI or an address: \_ for _, and so on.
_URL_ESCAPES = re.compile(r"\\([_%&#$~])")


def _bare(name: str, value: str) -> str:
    """Return an identifier or address as written, its escapes and braces undone."""
    _check_size(name, value)
    return _URL_ESCAPES.sub(r"\1", value).replace("{", "").replace("}", "").strip()


# ---- BibTeX ---------------------------------------------------------------------

# Journals that are arXiv itself: "arXiv preprint arXiv:2201.03545", DBLP's
# "CoRR" with volume "abs/2201.03545".
_ARXIV_JOURNAL = re.compile(r"^\s*(?:arxiv|corr)\b", re.IGNORECASE)
_ARXIV_IN_TEXT = re.compile(
    r"arxiv[:\s/]*(?:abs/)?(?P<id>\d{4}\.\d{4,5}(?:v\d+)?|[a-z-]+(?:\.[A-Z]{2})?/\d{7})",
    re.IGNORECASE,
)
_ABS_VOLUME = re.compile(r"^abs/(?P<id>\S+)$")


def _bibtex_name(latex: _Latex, person: str) -> str:
    try:
        parts = parse_single_name_into_parts(person, strict=False)
    except InvalidNameError:
        return latex.text("author", person)
    name = " ".join(parts.first + parts.von + parts.last)
    if parts.jr:
        name += ", " + " ".join(parts.jr)
    return latex.text("author", name)


def _bibtex_entry(latex: _Latex, block: bib.Entry) -> Entry:
    fields = {}
    for item in block.fields:
        value = item.value if isinstance(item.value, str) else str(item.value)
        fields[item.key.lower()] = value
    entry = Entry(line=_line(block))
    entry.title = latex.text("title", fields.get("title", ""))
    authors = fields.get("author", "")
    _check_size("author", authors)
    entry.authors = [
        _bibtex_name(latex, person)
        for person in split_multiple_persons_names(authors)
        if person.strip()
    ]
    entry.year = fields.get("year", "") or fields.get("date", "")[:4]
    journal = latex.text("journal", fields.get("journal", ""))
    booktitle = latex.text("booktitle", fields.get("booktitle", ""))
    arxiv_journal = bool(_ARXIV_JOURNAL.match(journal))
    entry.venue = booktitle or ("" if arxiv_journal else journal)
    prefix = (fields.get("archiveprefix", "") or fields.get("eprinttype", "")).lower()
    eprint = _bare("eprint", fields.get("eprint", ""))
    if eprint and (prefix in ("", "arxiv")):
        entry.arxiv_id = eprint
    elif arxiv_journal:
        found = _ARXIV_IN_TEXT.search(journal) or _ABS_VOLUME.match(
            fields.get("volume", "").strip()
        )
        if found is not None:
            entry.arxiv_id = found.group("id")
    entry.doi = _bare("doi", fields.get("doi", ""))
    url = _bare("url", fields.get("url", ""))
    entry.urls = [url] if url else []
    return entry


def _line(block: bib.Block) -> int:
    # The parser counts lines from 0; people (and editors) from 1.
    return (block.start_line or 0) + 1


def _bibtex_failure(block: bib.ParsingFailedBlock) -> str:
    if isinstance(block, bib.DuplicateFieldKeyBlock):
        keys = ", ".join(sorted(block.duplicate_keys))
        return f"the field {keys} is given twice; keep one."
    error = str(getattr(block.error, "abort_reason", "") or block.error)
    if (
        "Was still looking for" in error
        or "end of file" in error
        or "Unexpected end" in error
    ):
        return (
            'the entry is not closed (a { or " is left open, so the entry runs '
            "into the next one); close it, then import again."
        )
    first = error.strip().splitlines()[0][:200] if error.strip() else "unreadable"
    return f"it is not BibTeX that can be read ({first}); fix the entry."


def read_bibtex(text: str) -> Iterator[Entry | Refused]:
    """Yield the entries of a BibTeX file (@string macros resolved)."""
    # The parser logs each broken entry; the import's report says it, with the
    # line and what to do, so its log would only repeat it on the console.
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)
    library = bibtexparser.parse_string(text)
    latex = _Latex()
    for block in library.blocks:
        if isinstance(block, bib.Entry):
            try:
                yield _bibtex_entry(latex, block)
            except EntryError as why:
                yield Refused(_line(block), str(why))
        elif isinstance(block, bib.ParsingFailedBlock):
            yield Refused(_line(block), _bibtex_failure(block))


# ---- RIS ------------------------------------------------------------------------

_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")


def _ris_records(text: str) -> Iterator[tuple[int, str] | Refused]:
    """Yield (first line, text) per TY … ER record, or why a record has no end."""
    start: int | None = None
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        tag = _RIS_TAG.match(line)
        if tag is not None and tag.group(1) == "TY":
            if start is not None:
                yield Refused(
                    start,
                    "the record has no end: add a line 'ER  - ' before the next "
                    "'TY  - '.",
                )
            start, lines = number, [line]
        elif start is not None:
            lines.append(line)
            if tag is not None and tag.group(1) == "ER":
                yield start, "\n".join(lines) + "\n"
                start, lines = None, []
    if start is not None:
        yield Refused(start, "the record has no end: add a line 'ER  - ' after it.")


def _ris_name(name: str) -> str:
    family, _, given = (part.strip() for part in name.partition(","))
    given, _, suffix = given.partition(",")
    full = f"{given.strip()} {family}".strip()
    return f"{full}, {suffix.strip()}" if suffix.strip() else full


def _ris_entry(line: int, record: dict) -> Entry:
    def one(*keys: str) -> str:
        for key in keys:
            value = record.get(key)
            if isinstance(value, list):
                value = value[0] if value else ""
            if value:
                _check_size(key, str(value))
                return " ".join(str(value).split())
        return ""

    entry = Entry(line=line)
    entry.title = one("title", "primary_title")
    authors = record.get("authors") or record.get("first_authors") or []
    for name in authors:
        _check_size("author", name)
    entry.authors = [_ris_name(name) for name in authors if name.strip()]
    entry.year = one("year", "publication_year", "date")[:4]
    venue = one("secondary_title", "journal_name", "alternate_title3", "tertiary_title")
    publisher = one("publisher")
    entry.venue = "" if _ARXIV_JOURNAL.match(venue or "") else venue
    entry.doi = one("doi")
    entry.urls = [url.strip() for url in record.get("urls") or [] if url.strip()]
    for url in entry.urls:
        _check_size("url", url)
    # Zotero writes an arXiv preprint's id into its notes and accession number.
    texts = [one("accession_number"), one("number"), *(record.get("notes") or [])]
    if publisher.lower() == "arxiv" or any("arxiv" in t.lower() for t in texts):
        for value in texts:
            found = _ARXIV_IN_TEXT.search(value or "")
            if found is not None:
                entry.arxiv_id = found.group("id")
                break
    return entry


def read_ris(text: str) -> Iterator[Entry | Refused]:
    """Yield the records of a RIS file."""
    for record in _ris_records(text):
        if isinstance(record, Refused):
            yield record
            continue
        line, body = record
        try:
            parsed = rispy.loads(body, skip_unknown_tags=True)
        except (OSError, ValueError, KeyError, IndexError) as why:
            yield Refused(line, f"it is not RIS that can be read ({why}); fix it.")
            continue
        if not parsed:
            yield Refused(line, "the record is empty; remove it.")
            continue
        try:
            yield _ris_entry(line, parsed[0])
        except EntryError as why:
            yield Refused(line, str(why))


# ---- CSL-JSON -------------------------------------------------------------------

_NAME_PARTS = ["given", "dropping-particle", "non-dropping-particle", "family"]


def _csl_text(item: dict, key: str) -> str:
    value = item.get(key, "")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise EntryError(f'its "{key}" is not text; write it as a string.')
    _check_size(key, value)
    return " ".join(value.split())


def _csl_name(person) -> str:
    if not isinstance(person, dict):
        raise EntryError('an author is not a {"family": …, "given": …} object.')
    if person.get("literal"):
        return _csl_text(person, "literal")
    name = " ".join(_csl_text(person, key) for key in _NAME_PARTS if person.get(key))
    suffix = _csl_text(person, "suffix") if person.get("suffix") else ""
    return f"{name}, {suffix}" if suffix else name


def _csl_year(item: dict) -> str:
    issued = item.get("issued") or {}
    if not isinstance(issued, dict):
        return str(issued)[:10]
    parts = issued.get("date-parts")
    if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
        return str(parts[0][0])
    return str(issued.get("raw") or issued.get("literal") or "")[:10]


def _csl_entry(line: int, item) -> Entry:
    if not isinstance(item, dict):
        raise EntryError("it is not an object ({…}); each item must be one.")
    entry = Entry(line=line)
    entry.title = _csl_text(item, "title")
    people = item.get("author") or []
    if not isinstance(people, list):
        raise EntryError('its "author" is not a list.')
    entry.authors = [name for name in map(_csl_name, people) if name]
    entry.year = _csl_year(item)
    venue = _csl_text(item, "container-title")
    publisher = _csl_text(item, "publisher")
    entry.venue = "" if _ARXIV_JOURNAL.match(venue) else venue
    entry.doi = _csl_text(item, "DOI")
    url = _csl_text(item, "URL")
    entry.urls = [url] if url else []
    texts = [_csl_text(item, "number"), _csl_text(item, "note")]
    if publisher.lower() == "arxiv" or any("arxiv" in t.lower() for t in texts):
        for value in texts:
            found = _ARXIV_IN_TEXT.search(value)
            if found is not None:
                entry.arxiv_id = found.group("id")
                break
    return entry


def read_csl(text: str) -> Iterator[Entry | Refused]:
    """Yield the items of a CSL-JSON file (a list of items, or one item)."""
    decoder = json.JSONDecoder()
    position = len(text) - len(text.lstrip())
    if text[position : position + 1] == "{":
        text = text[:position] + "[" + text[position:] + "]"
    elif text[position : position + 1] != "[":
        raise ImportFailed(
            "The file is not CSL-JSON: it should start with [ (a list of items)."
        )
    position += 1
    line = text.count("\n", 0, position) + 1
    counted = position
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text):
            raise ImportFailed("The file ends before its closing ]; it is cut short.")
        if text[position] == "]":
            return
        line += text.count("\n", counted, position)
        counted = position
        try:
            item, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as why:
            raise ImportFailed(
                f"Line {why.lineno} is not valid JSON ({why.msg}); fix it and import "
                "again."
            ) from None
        except RecursionError:
            raise ImportFailed(
                f"The item on line {line} is nested too deep to read."
            ) from None
        try:
            yield _csl_entry(line, item)
        except EntryError as why:
            yield Refused(line, str(why))
        position = end


READERS = {"bibtex": read_bibtex, "ris": read_ris, "csl": read_csl}
