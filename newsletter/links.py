"""Absolute addresses on the site, built in one place from SITE_URL.

Stored HTML and templates use site-relative links (``/papers/convnext/``) so that
moving the site to another address breaks nothing already written. Wherever a reader
sees a link outside a page of the site (an email, a feed, a BibTeX entry, a canonical
tag), it is made absolute here.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from django.conf import settings


def site_url() -> str:
    """Return the site's public address, without a trailing slash."""
    return settings.SITE_URL.rstrip("/")


def absolute_url(path: str) -> str:
    """Return the absolute address of a path on the site; a full URL is kept."""
    if urlsplit(path).scheme:
        return path
    return urljoin(site_url() + "/", path)


# A start tag as html5ever (nh3) and Django templates write it; text content never
# holds a raw "<", so only real tags match, never code that shows HTML.
_VALUE = r"(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+)"
_TAG = re.compile(rf"<[a-zA-Z][^\s/>]*(?:\s+[^\s\"'>/=]+(?:\s*=\s*{_VALUE})?)*\s*/?>")
# One attribute of a tag; matched one after another, so a value that itself reads
# like href="…" (inside a title) is never taken for an attribute.
_ATTRIBUTE = re.compile(
    r"(?P<space>\s+)(?P<name>[^\s\"'>/=]+)"
    r"(?:(?P<eq>\s*=\s*)(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<bare>[^\s\"'=<>`]+)))?"
)
_URL_ATTRIBUTES = {"href", "src", "srcset"}


def _absolute_in(url: str, base: str, fragments: bool) -> str:
    url = url.strip()
    if not url or urlsplit(url).scheme or (url.startswith("#") and not fragments):
        return url
    return urljoin(base, url)


def _absolute_srcset(value: str, base: str, fragments: bool) -> str:
    candidates = []
    for candidate in value.split(","):
        url, _, descriptor = candidate.strip().partition(" ")
        candidates.append(f"{_absolute_in(url, base, fragments)} {descriptor}".strip())
    return ", ".join(candidates)


def _absolute_attribute(match: re.Match, base: str, fragments: bool) -> str:
    name = match["name"].lower()
    if name not in _URL_ATTRIBUTES or match["eq"] is None:
        return match.group(0)
    value = next(v for v in (match["dq"], match["sq"], match["bare"]) if v is not None)
    if name == "srcset":
        value = _absolute_srcset(value, base, fragments)
    else:
        value = _absolute_in(value, base, fragments)
    quote = "'" if match["sq"] is not None else '"'
    return f"{match['space']}{match['name']}{match['eq']}{quote}{value}{quote}"


def absolutize(html: str, *, base: str | None = None, fragments: bool = False) -> str:
    """Return the HTML with every relative href, src and srcset made absolute.

    base is the absolute address of the page the HTML stands for (the site's root
    by default): relative links resolve against it as they would on that page.
    Fragment-only links (``#fn1``) point inside the document that holds them, so
    they stay as they are unless fragments is true (a feed item, whose footnotes
    live on the issue's page).
    """
    base = base or site_url() + "/"
    return _TAG.sub(
        lambda tag: _ATTRIBUTE.sub(
            lambda attr: _absolute_attribute(attr, base, fragments), tag.group(0)
        ),
        html,
    )
