"""Who may read what lies behind the paywall: one place, used everywhere content
leaves Quire (pages, feeds, search, sitemap, BibTeX, meta tags, email segments)."""

from django.db.models import Q
from django.http import HttpRequest

from subscribers.billing.models import Membership, paid_access_q
from subscribers.sessions import current_subscriber


def request_has_paid_access(request: HttpRequest) -> bool:
    """Return whether this reader may see paid-only issues and paid sections.

    Staff always may; a signed-in subscriber may while their membership gives paid
    access (active, trialing, past due within the grace period, or complimentary).
    The answer is cached on the request.
    """
    cached = getattr(request, "_quire_paid_access", None)
    if cached is not None:
        return cached
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        allowed = True
    else:
        subscriber = current_subscriber(request)
        allowed = (
            subscriber is not None
            and Membership.objects.with_paid_access()
            .filter(subscriber_id=subscriber.pk)
            .exists()
        )
    # A per-request cache on the request, an attribute the stubs cannot know.
    request._quire_paid_access = allowed  # type: ignore[attr-defined]
    return allowed


def paid_subscribers_q() -> Q:
    """Return a filter on Subscriber selecting those who get the paid email."""
    return paid_access_q(prefix="membership__")
