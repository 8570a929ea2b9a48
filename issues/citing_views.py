"""The issue's citation downloads: /issues/<slug>/cite.bib, cite.ris, cite.json.

The same file for every reader (metadata only, see issues.citing), so each is a
shared page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from newsletter.models import Publication

from . import citing
from .reading import issues_for
from .shared_pages import shared_page

# What each file is: the text maker, its content type and its file extension.
FORMATS = {
    "bib": (citing.issue_bibtex, "text/x-bibtex; charset=utf-8"),
    "ris": (citing.ris, f"{citing.RIS_CONTENT_TYPE}; charset=utf-8"),
    "json": (citing.csl_json, f"{citing.CSL_CONTENT_TYPE}; charset=utf-8"),
}
# The citation needs none of the issue's bodies.
UNREAD_FIELDS = ["body", "body_html", "free_html", "paid_html", "public_text"]


@require_safe
@shared_page()
def issue_citation(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
    """Return the issue's citation as a BibTeX, RIS or CSL-JSON file."""
    make, content_type = FORMATS[fmt]
    issue = get_object_or_404(issues_for(request).defer(*UNREAD_FIELDS), slug=slug)
    text = make(issue, publication=Publication.load())
    response = HttpResponse(text, content_type=content_type)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{issue.slug}.{fmt}"'
    )
    return response
