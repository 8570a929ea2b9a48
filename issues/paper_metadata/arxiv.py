"""arXiv's API (an Atom feed per query): one paper, or a batch of them by id_list.

https://info.arxiv.org/help/api/user-manual.html. The feed is parsed with defusedxml,
which refuses DTDs and entities: the answer is data from the network.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from django.conf import settings

from . import http
from .details import TITLE_MAX, VENUE_MAX, PaperDetails, code_url_in, tidy
from .errors import ApiBusy, ApiUnreachable, PaperLookupError, PaperNotFound, seconds
from .pacing import Pace

LABEL = "arXiv"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
# What an entry's <id> ends with: the paper's id and its version
# (http://arxiv.org/abs/2201.03545v2, http://arxiv.org/abs/hep-th/9901001v1).
ENTRY_ID_RE = re.compile(r"/abs/(?P<id>.+?)v(?P<version>\d+)$")
VERSION_RE = re.compile(r"v(\d+)$")
# An error entry's id: http://arxiv.org/api/errors#incorrect_id_format_for_9999.99999
INCORRECT_ID_RE = re.compile(r"#incorrect_id_format_for_(\S{1,60})$")


def bare_id(arxiv_id: str) -> str:
    """Return an arXiv id without its version (2201.03545v2 -> 2201.03545)."""
    match = VERSION_RE.search(arxiv_id)
    # An old-style archive has letters before its slash ("solv-int/…"): a version
    # is only what follows the number.
    if match and "/" not in arxiv_id[match.start() :]:
        return arxiv_id[: match.start()]
    return arxiv_id


def version_of(arxiv_id: str) -> int | None:
    """Return the version an arXiv id names (2201.03545v2 -> 2), or None."""
    bare = bare_id(arxiv_id)
    return int(arxiv_id[len(bare) + 1 :]) if bare != arxiv_id else None


def pace() -> Pace:
    """Return arXiv's pace: one request every ARXIV_MIN_INTERVAL seconds, shared."""
    return Pace(
        "arxiv",
        label=LABEL,
        base_url=settings.ARXIV_API_URL,
        interval=settings.ARXIV_MIN_INTERVAL,
        max_wait=settings.PAPER_LOOKUP_MAX_WAIT,
    )


def fetch(
    arxiv_ids: list[str], *, pace_: Pace | None = None
) -> dict[str, PaperDetails]:
    """Return arXiv's latest details of these papers, by bare id, in one request.

    Papers arXiv does not have are left out of the answer.
    """
    ids = list(dict.fromkeys(bare_id(i) for i in arxiv_ids))
    if not ids:
        return {}
    pace_ = pace_ or pace()
    pace_.take_turn()
    query = urlencode({"id_list": ",".join(ids), "max_results": len(ids)})
    answer = http.get(
        f"{settings.ARXIV_API_URL}?{query}", label=LABEL, accept="application/atom+xml"
    )
    if answer.status in (429, 503):
        # arXiv's answer to too many requests: 503 with a Retry-After.
        wait = answer.retry_after if answer.retry_after is not None else 60.0
        pace_.hold_off(wait)
        raise ApiBusy(
            f"arXiv asks us to slow down, try again in {seconds(wait)} s.", wait=wait
        )
    papers = parse_feed(answer.body, status=answer.status)
    return {bare_id(p.arxiv_id): p for p in papers}


def fetch_one(arxiv_id: str) -> PaperDetails:
    """Return arXiv's details of one paper; raise PaperNotFound if it has none."""
    found = fetch([arxiv_id]).get(bare_id(arxiv_id))
    if found is None:
        raise PaperNotFound(f"arXiv has no paper {bare_id(arxiv_id)}.")
    return found


def parse_feed(body: bytes, *, status: int = 200) -> list[PaperDetails]:
    """Return the papers of an arXiv API feed; raise PaperLookupError for an error."""
    try:
        root = ElementTree.fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise ApiUnreachable(
            f"arXiv answered something that is not its feed (HTTP {status})."
        ) from exc
    if root.tag != f"{ATOM}feed":
        raise ApiUnreachable(
            f"arXiv answered something that is not its feed (HTTP {status})."
        )
    papers = []
    for entry in root.iter(f"{ATOM}entry"):
        entry_id = _text(entry, f"{ATOM}id")
        if "/api/errors" in entry_id:
            # arXiv's way of refusing a query: an entry titled "Error".
            said = _text(entry, f"{ATOM}summary") or "error"
            wrong = INCORRECT_ID_RE.search(entry_id)
            if wrong:
                raise PaperNotFound(f"arXiv has no paper {wrong.group(1)} ({said}).")
            raise PaperLookupError(f"arXiv refused the query: {said}.")
        paper = _paper(entry, entry_id)
        if paper is not None:
            papers.append(paper)
    if status >= 400 and not papers:
        raise ApiUnreachable(f"arXiv answered HTTP {status}.")
    return papers


def _paper(entry: Element, entry_id: str) -> PaperDetails | None:
    match = ENTRY_ID_RE.search(entry_id)
    title = _text(entry, f"{ATOM}title")
    if match is None or not title:
        return None  # arXiv's empty entry for an id it has no paper for
    arxiv_id = f"{match.group('id')}v{match.group('version')}"
    published = _text(entry, f"{ATOM}published")
    summary = _text(entry, f"{ATOM}summary")
    comment = _text(entry, f"{ARXIV}comment")
    return PaperDetails(
        title=title[:TITLE_MAX],
        authors=[
            name
            for author in entry.findall(f"{ATOM}author")
            if (name := _text(author, f"{ATOM}name"))
        ],
        year=int(published[:4]) if published[:4].isdigit() else None,
        venue=(_text(entry, f"{ARXIV}journal_ref") or "arXiv")[:VENUE_MAX],
        summary=summary,
        arxiv_id=arxiv_id,
        doi=_text(entry, f"{ARXIV}doi"),
        url="",
        code_url=code_url_in(comment, summary),
        arxiv_version=int(match.group("version")),
    )


def _text(element: Element, tag: str) -> str:
    found = element.find(tag)
    return tidy(found.text) if found is not None else ""
