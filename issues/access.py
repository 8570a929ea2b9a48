"""Who may read what lies behind the paywall: one place, used everywhere content
leaves Quire (pages, feeds, search, sitemap, BibTeX, meta tags, email segments)."""

from django.db.models import Q
from django.http import HttpRequest

from newsletter.twofactor.services import pending_step
from subscribers.billing.models import Membership, paid_access_q
from subscribers.sessions import current_subscriber


def may_read_unpublished(request: HttpRequest) -> bool:
    """Return whether this request reads as the author does: drafts, paid parts.

    Being staff is not enough: the account needs the right to view issues in the
    admin, and a session that still owes its two-factor code reads as anyone else.
    """
    cached = getattr(request, "_quire_reads_unpublished", None)
    if cached is not None:
        return cached
    user = getattr(request, "user", None)
    allowed = bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("issues.view_issue")
        and pending_step(request) is None
    )
    # Asked by the page and by each paid check on it: worked out once per request.
    request._quire_reads_unpublished = allowed  # type: ignore[attr-defined]
    return allowed


def request_has_paid_access(request: HttpRequest) -> bool:
    """Return whether this reader may see paid-only issues and paid sections.

    Staff who may read unpublished issues always may; a signed-in subscriber may
    while their membership gives paid access (active, trialing, past due within
    the grace period, or complimentary).
    The answer is cached on the request.
    """
    cached = getattr(request, "_quire_paid_access", None)
    if cached is not None:
        return cached
    if may_read_unpublished(request):
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
