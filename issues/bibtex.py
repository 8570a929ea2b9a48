"""BibTeX entries for papers and issues."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from newsletter.links import absolute_url

from .models import Issue, Paper

_SPECIAL = re.compile(r"([&%#_$])")


def _escape(value: str) -> str:
    value = str(value).replace("\\", "").replace("{", "").replace("}", "")
    return _SPECIAL.sub(r"\\\1", " ".join(value.split()))


def _ascii_word(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text.lower())


def citation_key(paper: Paper) -> str:
    """Return a key like liu2022convnet: first author's surname, year, title word."""
    surname = _ascii_word(paper.authors[0].split()[-1]) if paper.authors else ""
    stop = {"a", "an", "the", "on", "of", "for", "and", "to", "in", "with"}
    words = [_ascii_word(w) for w in paper.title.split()]
    word = next((w for w in words if w and w not in stop), "")
    return f"{surname or 'anon'}{paper.year or ''}{word}" or paper.slug


def _entry(kind: str, key: str, fields: list[tuple[str, str]]) -> str:
    lines = [f"@{kind}{{{key},"]
    lines += [f"  {name} = {{{_escape(value)}}}," for name, value in fields if value]
    lines.append("}")
    return "\n".join(lines) + "\n"


# Venues that publish articles rather than proceedings: the words and the short
# names readers write in Paper.venue.
_JOURNAL_WORDS = re.compile(
    r"\b(journal|transactions|letters|review|magazine|nature|science|jmlr|tmlr"
    r"|pami|tpami|ijcv|tacl|plos|pnas|cell)\b",
    re.IGNORECASE,
)


def is_journal_venue(venue: str) -> bool:
    """Return whether the venue publishes articles (an @article's journal)."""
    return bool(_JOURNAL_WORDS.search(venue))


def paper_bibtex(paper: Paper, *, key: str | None = None) -> str:
    """Return the paper's BibTeX entry, of the type reference managers expect.

    A journal venue makes an @article, any other venue (a conference or a
    workshop) an @inproceedings; a paper with no venue, such as an arXiv preprint,
    is a @misc with arXiv's eprint fields.
    """
    fields = [
        ("title", paper.title),
        ("author", " and ".join(paper.authors)),
        ("year", str(paper.year or "")),
    ]
    if paper.venue and is_journal_venue(paper.venue):
        kind = "article"
        fields.append(("journal", paper.venue))
    elif paper.venue:
        kind = "inproceedings"
        fields.append(("booktitle", paper.venue))
    else:
        kind = "misc"
        if paper.arxiv_id:
            # Read by styles that know nothing of eprint (plain, alpha).
            fields.append(("howpublished", f"arXiv preprint arXiv:{paper.arxiv_id}"))
    if paper.arxiv_id:
        fields += [("eprint", paper.arxiv_id), ("archivePrefix", "arXiv")]
    fields += [("doi", paper.doi), ("url", paper.link)]
    return _entry(kind, key or citation_key(paper), fields)


def papers_bibtex(papers: Iterable[Paper]) -> str:
    """Return BibTeX entries for these papers, keys made unique."""
    seen: dict[str, int] = {}
    entries = []
    for paper in papers:
        key = citation_key(paper)
        count = seen.get(key, 0)
        seen[key] = count + 1
        if count:
            key = f"{key}{chr(ord('a') + count - 1) if count <= 26 else count}"
        entries.append(paper_bibtex(paper, key=key))
    return "\n".join(entries)


def issue_bibtex(
    issue: Issue, papers: Iterable[Paper], *, publication: str, author: str = ""
) -> str:
    """Return an entry for the issue itself followed by the papers it cites."""
    date = issue.published_at or issue.created
    key = f"{_ascii_word(publication) or 'quire'}{date:%Y%m}"
    # A few whole words of the slug: "quire202203instructiontuningnotes".
    words = [_ascii_word(word) for word in issue.slug.split("-")]
    issue_entry = _entry(
        "misc",
        key + "".join([word for word in words if word][:3]),
        [
            ("title", issue.title),
            ("author", author),
            ("howpublished", publication),
            ("year", f"{date:%Y}"),
            ("month", f"{date:%b}".lower()),
            ("url", absolute_url(issue.get_absolute_url())),
            ("doi", issue.doi),
        ],
    )
    rest = papers_bibtex(papers)
    return issue_entry + ("\n" + rest if rest else "")
