"""Fixed-window rate limits in Django's cache (shared by every process)."""

from django.conf import settings
from django.core.cache import cache


def over_limit(key: str, *, limit: int, window: int) -> bool:
    """Count one attempt under key; return True once more than limit in window s."""
    cache_key = f"ratelimit:{key}"
    if cache.add(cache_key, 1, timeout=window):
        return limit < 1
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add() and incr()
        cache.add(cache_key, 1, timeout=window)
        count = 1
    return count > limit


def client_ip(request) -> str:
    """Return the client's IP address (the proxy's X-Forwarded-For when behind one)."""
    # With DEBUG off Quire runs behind a proxy (see README), which appends the
    # client's address last; without one the header is the client's own words.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and not settings.DEBUG:
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "") or ""
