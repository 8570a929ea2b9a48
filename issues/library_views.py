"""The reader's paper library pages: the list, Save and Remove, the BibTeX export.

Only for a signed-in subscriber, and never shared: a reader without a session
is sent to sign in and nothing is saved. Shared issue and paper pages show a
"Sign in to save" link instead of the form (templates/issues/_save_paper.html).
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from subscribers.models import Subscriber
from subscribers.sessions import current_subscriber

from . import bibtex, library
from .models import Paper


def _private(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, no_store=True)
    return response


def _signed_in(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        subscriber = current_subscriber(request)
        if subscriber is None:
            return _private(redirect("subscribers:login"))
        return _private(view(request, subscriber, *args, **kwargs))

    return wrapper


def _back(request: HttpRequest) -> HttpResponse:
    """Return to the page the form was on, if it is one of this site's."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ) or not target.startswith("/"):
        target = reverse("issues:library")
    return HttpResponseRedirect(target)


def _paper(request: HttpRequest) -> Paper:
    return get_object_or_404(Paper.objects.only("pk", "title", "slug"),
                             slug=request.POST.get("paper", "")[:200])  # fmt: skip


@require_safe
@_signed_in
def papers(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """List the subscriber's saved papers."""
    return render(request, "issues/library.html", {"subscriber": subscriber})


@require_POST
@_signed_in
def save(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Save a paper to the subscriber's library."""
    paper = _paper(request)
    library.save_paper(subscriber=subscriber, paper=paper)
    messages.success(request, f"Saved “{paper.title}” to your papers.")
    return _back(request)


@require_POST
@_signed_in
def remove(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Take a paper out of the subscriber's library."""
    paper = _paper(request)
    if library.remove_paper(subscriber=subscriber, paper=paper):
        messages.success(request, f"Removed “{paper.title}” from your papers.")
    return _back(request)


@require_safe
@_signed_in
def export(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Download the subscriber's saved papers as BibTeX."""
    text = bibtex.papers_bibtex(library.saved_papers(subscriber))
    response = HttpResponse(text, content_type="text/x-bibtex; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="my-papers.bib"'
    return response
