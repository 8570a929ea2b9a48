"""Which hits are machines: every rule in one place, each named by its reason.

Two kinds of rule. ``request_reason`` looks at one request, when it arrives: the
mail-privacy proxies and prefetchers that fetch every image of a message whether or
not anyone reads it (Apple Mail Privacy Protection, Yahoo's and Outlook's proxies,
Gmail's image proxy), link scanners and other programs. ``delivery_reasons`` looks at
a delivery's hits together, when they are flushed: a click within
``ANALYTICS_MACHINE_CLICK_SECONDS`` of the message leaving, the hidden link no person
can reach, or every link of the message followed within seconds.

A machine hit is kept, marked with its reason, and left out of every human figure.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

from django.conf import settings

from issues.sending.emails.tracking import HONEYPOT

# Apple's proxies (Mail Privacy Protection) fetch from Apple's own network, 17/8,
# and from its iCloud Private Relay egress ranges; they send "Mozilla/5.0" and
# nothing more.
APPLE_NETWORKS = ("17.0.0.0/8", "2620:149::/32", "2a01:b740::/32")
APPLE_BARE_UA = "Mozilla/5.0"

# Lower-cased pieces of user agents that only programs send.
PROXY_UAS = {
    "googleimageproxy": "gmail-image-proxy",
    "ggpht.com": "gmail-image-proxy",
    "yahoomailproxy": "yahoo-proxy",
    "yahoo! slurp": "yahoo-proxy",
    "outlook-ios-android": "outlook-proxy",
    "ms-office": "outlook-proxy",
    "microsoft office existence discovery": "outlook-proxy",
    "bingpreview": "scanner",
    "barracuda": "scanner",
    "mimecast": "scanner",
    "proofpoint": "scanner",
    "safelinks": "scanner",
    "symantec": "scanner",
    "forcepoint": "scanner",
    "trendmicro": "scanner",
    "headlesschrome": "scanner",
    "phantomjs": "scanner",
    "python-requests": "program",
    "python-urllib": "program",
    "aiohttp": "program",
    "go-http-client": "program",
    "curl/": "program",
    "wget/": "program",
    "okhttp": "program",
    "java/": "program",
    "libwww-perl": "program",
}
_BOTS = re.compile(r"bot\b|bot/|crawler|spider|slurp|preview|scanner|monitor", re.I)


@cache
def _apple_networks() -> tuple:
    return tuple(ipaddress.ip_network(net) for net in APPLE_NETWORKS)


def _from_apple(ip: str) -> bool:
    if "." in ip and ":" not in ip:
        # IPv4: Apple's only network is 17/8, so the first octet tells.
        return ip.startswith("17.")
    return _from_apple_v6(ip)


@lru_cache(maxsize=4096)
def _from_apple_v6(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in _apple_networks())


def request_reason(user_agent: str, ip: str = "") -> str:
    """Return why a request is a machine's, or "" for a person's (as far as known)."""
    agent = user_agent.strip()
    if ip and _from_apple(ip) and "Mac OS X" not in agent and "iPhone" not in agent:
        return "apple-privacy-proxy" if agent else "no-user-agent"
    return _agent_reason(agent)


@lru_cache(maxsize=4096)
def _agent_reason(agent: str) -> str:
    """The user agent's part of request_reason: a few thousand agents make nearly
    every request, so each is looked at once per process."""
    if not agent:
        return "no-user-agent"
    if agent == APPLE_BARE_UA:
        # Apple's proxy; anyone else sending exactly this is a program too.
        return "apple-privacy-proxy"
    lowered = agent.lower()
    for piece, reason in PROXY_UAS.items():
        if piece in lowered:
            return reason
    if _BOTS.search(agent):
        return "bot"
    return ""


def is_bot(user_agent: str) -> bool:
    """Return whether a web page request comes from a program (not counted)."""
    return bool(request_reason(user_agent))


@dataclass
class DeliveryHit:
    """A hit of one delivery, as the flush sees it."""

    kind: str
    at: datetime
    link: int | None
    reason: str = ""


def delivery_reasons(
    hits: list[DeliveryHit], *, sent_at: datetime | None, links_in_email: int
) -> None:
    """Set the reason of each of a delivery's hits a machine made (in place).

    hits: this flush's hits of the delivery (opens and clicks); links_in_email: how
    many tracked links the message has.
    """
    soon = settings.ANALYTICS_MACHINE_CLICK_SECONDS
    burst = settings.ANALYTICS_ALL_LINKS_SECONDS
    clicks = [hit for hit in hits if hit.kind == "click"]
    if any(hit.link == HONEYPOT for hit in clicks):
        # Whatever followed the hidden link followed the rest too.
        for hit in hits:
            hit.reason = hit.reason or "hidden-link"
        return
    for hit in clicks:
        if sent_at is not None and (hit.at - sent_at).total_seconds() < soon:
            hit.reason = hit.reason or "click-right-after-delivery"
    if links_in_email >= 3:
        followed = {hit.link for hit in clicks}
        if len(followed) >= links_in_email:
            span = max(h.at for h in clicks) - min(h.at for h in clicks)
            if span.total_seconds() <= burst:
                for hit in clicks:
                    hit.reason = hit.reason or "every-link-at-once"
