"""Absolute links for email: the site, the unsubscribe page, the pricing page.

Every absolute address comes from ``newsletter.links``; this module only knows which
pages an issue email links to.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from newsletter.links import absolute_url, absolutize

__all__ = [
    "absolute_url",
    "absolutize",
    "account_url",
    "pricing_url",
    "unsubscribe_url",
    "unsubscribe_url_parts",
]


def unsubscribe_url(token: str) -> str:
    """Return the https one-click unsubscribe URL for a subscriber's token."""
    return absolute_url(reverse("subscribers:unsubscribe", args=[token]))


def account_url() -> str:
    """Return the account page, where a subscriber manages their subscription."""
    return absolute_url(reverse("subscribers:account"))


def unsubscribe_url_parts() -> tuple[str, str]:
    """Return the unsubscribe URL split around its token (reverse() once)."""
    marker = "TOKENMARKER0"
    try:
        url = unsubscribe_url(marker)
    except NoReverseMatch:
        # The unsubscribe page is not routed (yet): point at the site's home.
        return absolute_url("/unsubscribe/"), "/"
    prefix, _, suffix = url.partition(marker)
    return prefix, suffix


def pricing_url() -> str:
    """Return where a free reader becomes a supporter."""
    for name in ("billing:pricing", "subscribers:subscribe"):
        try:
            return absolute_url(reverse(name))
        except NoReverseMatch:
            continue
    return absolute_url("/")
