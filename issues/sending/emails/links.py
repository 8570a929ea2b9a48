"""The pages an issue email links to: unsubscribe, the account page, pricing.

Every absolute address is made by ``newsletter.links.absolute_url``; this module only
knows which pages an email points at.
"""

from __future__ import annotations

from django.urls import reverse

from newsletter.links import absolute_url

# Stands in for the token while the unsubscribe URL is reversed once per email.
_TOKEN_MARKER = "TOKENMARKER0"  # noqa: S105 - not a secret


def unsubscribe_url(token: str) -> str:
    """Return the https one-click unsubscribe URL for a subscriber's token."""
    return absolute_url(reverse("subscribers:unsubscribe", args=[token]))


def account_url() -> str:
    """Return the account page, where a subscriber manages their subscription."""
    return absolute_url(reverse("subscribers:account"))


def unsubscribe_url_parts() -> tuple[str, str]:
    """Return the unsubscribe URL split around its token (reverse() once)."""
    prefix, _, suffix = unsubscribe_url(_TOKEN_MARKER).partition(_TOKEN_MARKER)
    return prefix, suffix


def pricing_url() -> str:
    """Return where a free reader becomes a supporter."""
    return absolute_url(reverse("billing:pricing"))
