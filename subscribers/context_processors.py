from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from newsletter.models import Newsletter

from .sessions import current_subscriber


def reader(request: HttpRequest) -> dict:
    """Expose the signed-in subscriber to templates, looked up only when used."""
    # Templates call callables: no query unless a template asks, and none at all
    # for a reader without a session (see subscribers.sessions).
    return {"current_subscriber": lambda: current_subscriber(request)}


def newsletters(request: HttpRequest) -> dict:
    """Expose the newsletters the subscribe form offers, loaded only when used.

    The same list for every reader: the form is part of pages cached for all
    (issues.pagecache), so what is ticked comes from each newsletter's
    join_by_default alone.
    """
    return {
        "subscribe_newsletters": SimpleLazyObject(
            lambda: list(Newsletter.objects.order_by("position", "pk"))
        )
    }
