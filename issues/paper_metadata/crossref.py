"""Crossref's REST API: one work by its DOI (https://api.crossref.org/works/<doi>).

Crossref's etiquette: say who we are with an address in the User-Agent (the "polite
pool"), keep to a few requests a second, and back off when it answers 429.
https://www.crossref.org/documentation/retrieve-metadata/rest-api/tips-for-using-the-crossref-rest-api/
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

from django.conf import settings

from . import http
from .details import TITLE_MAX, VENUE_MAX, PaperDetails, code_url_in, tidy
from .errors import ApiBusy, ApiUnreachable, PaperNotFound, seconds
from .pacing import Pace

LABEL = "Crossref"
# Abstracts come as JATS XML (<jats:p>…</jats:p>): the text is what readers want.
TAG_RE = re.compile(r"<[^>]{0,500}>")


def pace() -> Pace:
    """Return Crossref's pace: one request every CROSSREF_MIN_INTERVAL s, shared."""
    return Pace(
        "crossref",
        label=LABEL,
        base_url=settings.CROSSREF_API_URL,
        interval=settings.CROSSREF_MIN_INTERVAL,
        max_wait=settings.PAPER_LOOKUP_MAX_WAIT,
    )


def fetch_one(doi: str) -> PaperDetails:
    """Return Crossref's details of the work with this DOI."""
    pace_ = pace()
    pace_.take_turn()
    answer = http.get(
        f"{settings.CROSSREF_API_URL.rstrip('/')}/works/{quote(doi, safe='/')}",
        label=LABEL,
        accept="application/json",
    )
    if answer.status == 404:
        raise PaperNotFound(f"Crossref has no work with the DOI {doi}.")
    if answer.status == 429 or answer.status == 503:
        wait = answer.retry_after if answer.retry_after is not None else 60.0
        pace_.hold_off(wait)
        raise ApiBusy(
            f"Crossref asks us to slow down, try again in {seconds(wait)} s.", wait=wait
        )
    if answer.status != 200:
        raise ApiUnreachable(f"Crossref answered HTTP {answer.status}.")
    try:
        message = json.loads(answer.body)["message"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiUnreachable("Crossref answered something that is not a work.") from exc
    return parse_work(message, doi=doi)


def parse_work(work: dict, *, doi: str = "") -> PaperDetails:
    """Return the details of a Crossref work (the "message" of /works/<doi>)."""
    if not isinstance(work, dict):
        raise ApiUnreachable("Crossref answered something that is not a work.")
    title = tidy(_first(work.get("title")))
    if not title:
        raise PaperNotFound(f"Crossref has no title for the DOI {doi}.")
    abstract = tidy(html.unescape(TAG_RE.sub(" ", str(work.get("abstract") or ""))))
    # A leading "Abstract" heading is JATS's <jats:title>, not the abstract.
    if abstract.lower().startswith("abstract "):
        abstract = abstract[len("abstract ") :]
    venue = tidy(_first(work.get("container-title"))) or tidy(
        (work.get("event") or {}).get("name")
        if isinstance(work.get("event"), dict)
        else ""
    )
    return PaperDetails(
        title=title[:TITLE_MAX],
        authors=_authors(work.get("author")),
        year=_year(work),
        venue=venue[:VENUE_MAX],
        summary=abstract,
        # Crossref gives DOIs in lower case; the author's spelling is kept.
        doi=doi if doi.lower() == str(work.get("DOI") or doi).lower() else work["DOI"],
        url=_resource_url(work),
        code_url=code_url_in(abstract),
    )


def _resource_url(work: dict) -> str:
    resource = work.get("resource")
    primary = resource.get("primary") if isinstance(resource, dict) else None
    url = str(primary.get("URL") or "") if isinstance(primary, dict) else ""
    return url if url.startswith(("https://", "http://")) else ""


def _first(value) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


def _authors(authors) -> list[str]:
    names = []
    for author in authors if isinstance(authors, list) else []:
        if not isinstance(author, dict):
            continue
        name = tidy(
            " ".join(str(author.get(k) or "") for k in ("given", "family"))
        ) or tidy(str(author.get("name") or ""))
        if name:
            names.append(name)
    return names


def _year(work: dict) -> int | None:
    for key in ("published-print", "published-online", "published", "issued"):
        try:
            year = work[key]["date-parts"][0][0]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(year, int) and 1000 <= year <= 9999:
            return year
    return None
