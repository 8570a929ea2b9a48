"""The reader's library in templates: which papers a signed-in reader saved (reads
only). Nothing per reader reaches a page rendered for every anonymous reader."""

from django import template

from subscribers.sessions import current_subscriber

from ..library import saved_paper_ids, saved_papers
from ..shared_pages import is_rendering_shared

register = template.Library()

_SAVED = "_quire_saved_paper_ids"


@register.simple_tag(takes_context=True)
def saved_ids(context) -> frozenset[int]:
    """Return the ids of the papers this reader saved (one query per request)."""
    request = context.get("request")
    if request is None or is_rendering_shared(request):
        return frozenset()
    if not hasattr(request, _SAVED):
        subscriber = current_subscriber(request)
        ids = saved_paper_ids(subscriber) if subscriber is not None else frozenset()
        setattr(request, _SAVED, ids)
    return getattr(request, _SAVED)


@register.simple_tag
def library_papers(subscriber) -> list:
    """Return the subscriber's saved papers, the latest first."""
    return list(saved_papers(subscriber))
