"""Which paper a link points at: its page here, its arXiv entry, DOI or own URL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.db.models import Q

from issues.identifiers import ARXIV_LINK_RE, DOI_LINK_RE, normalize_doi
from issues.models import Paper

_VERSION = re.compile(r"v\d+$")
_PAPER_PAGE = re.compile(r"^/papers/(?P<slug>[-\w]+)/?$")


def paper_for_url(url: str) -> Paper | None:
    """Return the paper a link leads to, or None."""
    arxiv = ARXIV_LINK_RE.match(url)
    if arxiv is not None:
        bare = _VERSION.sub("", arxiv.group("id"))
        return (
            Paper.objects.filter(Q(arxiv_id=bare) | Q(arxiv_id__startswith=f"{bare}v"))
            .order_by("pk")
            .first()
        )
    if DOI_LINK_RE.match(url):
        return Paper.objects.filter(doi__iexact=normalize_doi(url)).first()
    page = _PAPER_PAGE.match(urlsplit(url).path)
    if page is not None:
        found = Paper.objects.filter(slug=page.group("slug")).first()
        if found is not None:
            return found
    return Paper.objects.filter(Q(url=url) | Q(code_url=url)).order_by("pk").first()
