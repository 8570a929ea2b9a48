"""Who may read what lies behind the paywall: one place, used everywhere content
leaves Quire (pages, feeds, search, sitemap, BibTeX, meta tags, email segments)."""

from django.db.models import Q
from django.http import HttpRequest


def request_has_paid_access(request: HttpRequest) -> bool:
    """Return whether this reader may see paid-only issues and paid sections."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def paid_subscribers_q() -> Q:
    """Return a filter on Subscriber selecting those who get the paid email."""
    return Q(pk__in=[])
