"""Counting web views of issue and paper pages, cached pages included.

A middleware sees every response, also those the page cache (issues/pagecache.py)
answers without running the view, and 304s; it counts GETs of an issue's or a
paper's page that succeeded, from people (machines.is_bot), with no cookie read or
set.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from .hits import record_view

PAGES = {"issues:issue": "issue", "issues:paper": "paper"}


class PageViewMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if (
            match is not None
            and request.method == "GET"
            and response.status_code in (200, 304)
            and match.view_name in PAGES
        ):
            record_view(request, kind=PAGES[match.view_name], slug=match.kwargs["slug"])
        return response
