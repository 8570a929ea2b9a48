"""A paper's details from its arXiv id, DOI or link: asked of arXiv and Crossref.

``parse_identifier(text)`` reads what an author pasted (an id, ``arXiv:…``,
``doi:…``, an arxiv.org or doi.org link, a publisher's link with a DOI in it, or a
``[[arxiv:…]]`` reference); ``lookup_paper(text)`` returns the paper's details,
answered from Django's cache when asked before, so that repeats never reach the API.
Each API is called at its own shared pace (pacing.py). The papers themselves are
written by issues.paper_adding; this package only reads the APIs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings
from django.core.cache import cache

from . import arxiv, crossref
from .details import PaperDetails
from .errors import ApiBusy, ApiUnreachable, PaperLookupError, PaperNotFound
from .pacing import api_key

__all__ = [
    "ApiBusy",
    "ApiUnreachable",
    "Identifier",
    "PaperDetails",
    "PaperLookupError",
    "PaperNotFound",
    "lookup_paper",
    "parse_identifier",
]

# arXiv ids, looser than the model's check: the API is the one to say "no such
# paper" (9999.99999), the form the one to refuse a malformed id.
ARXIV_RE = re.compile(
    r"^(?:\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$"
)
ARXIV_LINK_RE = re.compile(
    r"^(?:https?://)?(?:[a-z]+\.)?arxiv\.org/(?:abs|pdf|html)/(?P<id>[^?#]+?)"
    r"(?:\.pdf)?/?(?:[?#].*)?$",
    re.IGNORECASE,
)
DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
# A DOI inside any link: doi.org's, or a publisher's (dl.acm.org/doi/10.1145/…).
DOI_IN_URL_RE = re.compile(r"(10\.\d{4,9}/[^\s?#]+)")
REFERENCE_RE = re.compile(r"^\[\[(arxiv|doi):([^\]\s]+)\]\]$", re.IGNORECASE)
PREFIX_RE = re.compile(r"^(arxiv|doi)\s*:\s*", re.IGNORECASE)
# Nothing an author pastes for one paper is longer.
MAX_INPUT = 500
HOW = (
    "Paste an arXiv id (2201.03545), a DOI (10.1109/…) or an arxiv.org or doi.org link."
)


@dataclass(frozen=True)
class Identifier:
    kind: str  # "arxiv" or "doi"
    value: str  # the bare DOI, or the arXiv id as given (with its version, if any)

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def parse_identifier(text: str) -> Identifier:
    """Return the arXiv id or DOI in what the author pasted; raise PaperLookupError."""
    text = (text or "").strip()
    if not text:
        raise PaperLookupError(HOW)
    if len(text) > MAX_INPUT:
        raise PaperLookupError(f"That is too long for one paper's id. {HOW}")
    reference = REFERENCE_RE.match(text)
    if reference:
        text = f"{reference.group(1)}:{reference.group(2)}"
    prefix = PREFIX_RE.match(text)
    if prefix:
        kind, rest = prefix.group(1).lower(), text[prefix.end() :].strip()
        return _checked(kind, rest)
    link = ARXIV_LINK_RE.match(text)
    if link:
        return _checked("arxiv", link.group("id"))
    if ARXIV_RE.match(text):
        return Identifier("arxiv", text)
    if DOI_RE.match(text):
        return Identifier("doi", text)
    if text.lower().startswith(("http://", "https://", "doi.org/", "dx.doi.org/")):
        found = DOI_IN_URL_RE.search(unquote(text))
        if found:
            return Identifier("doi", found.group(1).rstrip(".,;"))
        raise PaperLookupError(f"That link names no arXiv paper or DOI. {HOW}")
    raise PaperLookupError(f"“{text[:80]}” is not an arXiv id or a DOI. {HOW}")


def _checked(kind: str, value: str) -> Identifier:
    if kind == "arxiv" and ARXIV_RE.match(value):
        return Identifier("arxiv", value)
    if kind == "doi":
        found = DOI_IN_URL_RE.search(unquote(value))
        if found and DOI_RE.match(found.group(1)):
            return Identifier("doi", found.group(1).rstrip(".,;"))
    raise PaperLookupError(f"“{value[:80]}” is not a valid {kind} id. {HOW}")


def lookup_paper(text: str | Identifier) -> PaperDetails:
    """Return the details of the paper named by text, from the cache or the API.

    An arXiv id is asked of arXiv (and its DOI, when it has one, is kept); a DOI of
    Crossref. Raises PaperLookupError (or a subclass) with words for the author.
    """
    identifier = text if isinstance(text, Identifier) else parse_identifier(text)
    base = (
        settings.ARXIV_API_URL
        if identifier.kind == "arxiv"
        else settings.CROSSREF_API_URL
    )
    asked = (
        identifier.value
        if identifier.kind == "doi"
        else arxiv.bare_id(identifier.value)
    )
    key = f"{api_key(identifier.kind, base)}:paper:{asked.lower()}"
    cached = cache.get(key)
    if isinstance(cached, dict):
        if "not_found" in cached:
            raise PaperNotFound(cached["not_found"])
        details = PaperDetails.from_dict(cached)
    else:
        try:
            details = (
                arxiv.fetch_one(asked)
                if identifier.kind == "arxiv"
                else crossref.fetch_one(asked)
            )
        except PaperNotFound as exc:
            # Asked again soon (a retyped id), the answer is still no.
            cache.set(
                key, {"not_found": str(exc)}, timeout=settings.PAPER_LOOKUP_MISS_SECONDS
            )
            raise
        cache.set(key, details.as_dict(), timeout=settings.PAPER_LOOKUP_CACHE_SECONDS)
    if identifier.kind == "arxiv" and arxiv.version_of(identifier.value):
        # The author names the version they read: that one is the one discussed.
        details.arxiv_id = identifier.value
    return details
