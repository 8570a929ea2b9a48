"""Who the reader is: the subscriber signed in through a magic link.

Other parts of Quire (paid tiers, the account page) use these three functions and
never read the session key themselves.
"""

from typing import cast

from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from .models import Subscriber

SESSION_KEY = "subscriber_id"


def current_subscriber(request: HttpRequest) -> Subscriber | None:
    """Return the subscriber signed in on this request's session, or None.

    None when nobody signed in or the record has since been deleted. The result is
    cached on the request, so calling it twice costs one query.
    """
    if hasattr(request, "_current_subscriber"):
        return request._current_subscriber
    subscriber = None
    session = getattr(request, "session", None)
    pk = session.get(SESSION_KEY) if session is not None else None
    if pk is not None:
        subscriber = Subscriber.objects.filter(pk=pk).first()
        if subscriber is None:
            cast(SessionBase, session).pop(SESSION_KEY, None)
    # A per-request cache on the request, an attribute the stubs cannot know.
    request._current_subscriber = subscriber  # type: ignore[attr-defined]
    return subscriber


def sign_in_subscriber(request: HttpRequest, subscriber: Subscriber) -> None:
    """Start a session for the subscriber (a fresh session key, against fixation)."""
    request.session.cycle_key()
    request.session[SESSION_KEY] = subscriber.pk
    request._current_subscriber = subscriber  # type: ignore[attr-defined]


def sign_out_subscriber(request: HttpRequest) -> None:
    """End the subscriber's session; a staff login on the same browser is kept."""
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()
    request._current_subscriber = None  # type: ignore[attr-defined]
