"""Absolute links for email: the site, the unsubscribe page, the pricing page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import NoReverseMatch, reverse


def absolute_url(path_or_url: str) -> str:
    if urlsplit(path_or_url).scheme:
        return path_or_url
    return f"{settings.SITE_URL}/{path_or_url.lstrip('/')}"


_RELATIVE_ATTR = re.compile(r'(?P<attr>\b(?:src|href))="(?P<url>/[^/"][^"]*|/)"')


def absolutize(html_text: str) -> str:
    """Return html with root-relative src/href attributes made absolute."""
    return _RELATIVE_ATTR.sub(
        lambda m: f'{m["attr"]}="{settings.SITE_URL}{m["url"]}"', html_text
    )


def unsubscribe_url(token: str) -> str:
    """Return the https one-click unsubscribe URL for a subscriber's token."""
    return f"{settings.SITE_URL}{reverse('subscribers:unsubscribe', args=[token])}"


def _unsubscribe_url_parts() -> tuple[str, str]:
    """Return the unsubscribe URL split around its token (reverse() once)."""
    marker = "TOKENMARKER0"
    try:
        url = unsubscribe_url(marker)
    except NoReverseMatch:
        # The unsubscribe page is not routed (yet): point at the site's home.
        return f"{settings.SITE_URL}/unsubscribe/", "/"
    prefix, _, suffix = url.partition(marker)
    return prefix, suffix


def _pricing_url() -> str:
    for name in ("billing:pricing", "subscribers:subscribe"):
        try:
            return absolute_url(reverse(name))
        except NoReverseMatch:
            continue
    return settings.SITE_URL + "/"
