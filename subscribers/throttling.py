"""Request throttling for subscribe and sign-in: fixed-window limits in Django's
cache (shared by every process). Not the outgoing email rate (issues.sending).

Also who the client is: its IP address (believing X-Forwarded-For only from
TRUSTED_PROXIES) and its mailbox (aliases of one inbox count as one).
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

from .addresses import address_key

logger = logging.getLogger(__name__)

# Providers that ignore dots in the local part (ada.lovelace@ is adalovelace@).
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


class LimiterUnavailable(Exception):
    """The cache that holds the counts did not answer; nothing was counted."""


def over_limit(key: str, *, limit: int, window: int) -> bool:
    """Count one attempt under key; return True once more than limit in window s.

    Raises LimiterUnavailable when the cache cannot be reached (Redis down), so
    that the caller refuses rather than lets everything through uncounted.
    """
    # The prefix predates the module's name; kept so counts survive an upgrade.
    cache_key = f"ratelimit:{key}"
    try:
        if cache.add(cache_key, 1, timeout=window):
            return limit < 1
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add() and incr()
            cache.add(cache_key, 1, timeout=window)
            count = 1
    # Each cache backend raises its own errors (redis.ConnectionError, OSError for
    # files, …): one place turns them all into one answer.
    except Exception as exc:
        logger.error("Rate limit cache unavailable (%s): %s", key.split(":")[0], exc)
        raise LimiterUnavailable(str(exc)) from exc
    return count > limit


def mailbox_key(email: str) -> str:
    """Return the inbox an address reaches, for counting: ada+news@ is ada@.

    Only for rate limits; the subscriber keeps the address exactly as typed.
    """
    local, _, domain = address_key(email).rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


@lru_cache(maxsize=16)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(
        ipaddress.ip_network(entry.strip(), strict=False)
        for entry in entries
        if entry.strip()
    )


def _ip(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(request) -> str:
    """Return the client's IP address.

    X-Forwarded-For is believed only when the connection comes from a proxy in
    TRUSTED_PROXIES, and then read from the right: each trusted proxy appends the
    address it saw, so the first address from the right that is not a trusted
    proxy is the client. Anything left of it is whatever the client sent.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    if not networks:
        return remote
    remote_ip = _ip(remote)
    if remote_ip is None or not _trusted(remote_ip, networks):
        return remote
    hops = request.headers.get("x-forwarded-for", "").split(",")
    client = remote
    for hop in reversed(hops):
        hop_ip = _ip(hop)
        if hop_ip is None:
            # Not what a proxy writes: stop at the last address a proxy vouched for.
            break
        client = str(hop_ip)
        if not _trusted(hop_ip, networks):
            break
    return client


def _trusted(ip, networks) -> bool:
    return any(ip in network for network in networks)
