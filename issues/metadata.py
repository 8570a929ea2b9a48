"""What an issue page tells link previews, search engines and share buttons.

The preview image (the cover, or a generated card), the schema.org ``Article`` in
JSON-LD, and the share links. Descriptions come from issues.reading, so they hold
free content only, as everywhere content leaves Quire.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from newsletter.links import absolute_url
from newsletter.models import Publication

from . import cards
from .models import Issue


@dataclass(frozen=True)
class PreviewImage:
    url: str  # absolute
    width: int | None
    height: int | None
    alt: str


def preview_image(issue: Issue, publication: Publication) -> PreviewImage | None:
    """Return the image link previews show: the cover, or else the issue's card."""
    if issue.cover_image:
        return PreviewImage(
            absolute_url(issue.cover_image.url),
            issue.cover_width,
            issue.cover_height,
            issue.cover_alt,
        )
    url = cards.card_url(publication=publication.name, title=issue.title)
    if url is None:
        return None
    return PreviewImage(
        absolute_url(url),
        cards.WIDTH,
        cards.HEIGHT,
        f"{publication.name}: {issue.title}",
    )


# In a <script> element the HTML parser ends the element at "</script" and treats
# "<!--" specially, whatever the JSON means: "<", ">" and "&" are written as JSON
# escapes, which read back as the same characters. U+2028 and U+2029 are valid
# in JSON but not in older JavaScript strings; escaped too.
_SCRIPT_ESCAPES = {
    ord("<"): "\\u003C",
    ord(">"): "\\u003E",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def json_for_script(data: object) -> SafeString:
    """Return data as JSON safe to place inside a <script> element."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    # Escaped above: nothing in it can end the element or open markup.
    return mark_safe(text.translate(_SCRIPT_ESCAPES))  # noqa: S308


def article_data(
    issue: Issue,
    *,
    publication: Publication,
    description: str,
    image: PreviewImage | None,
) -> dict:
    """Return the issue as a schema.org Article (for search engines)."""
    url = absolute_url(issue.get_absolute_url())
    publisher = {"@type": "Organization", "name": publication.name}
    if publication.author_name:
        author: dict = {"@type": "Person", "name": publication.author_name}
        if publication.author_photo:
            author["image"] = absolute_url(publication.author_photo.url)
    else:
        author = publisher
    data: dict = {
        "@context": "https://schema.org",
        "@type": "Article",
        "headline": issue.title,
        "description": description,
        "url": url,
        "mainEntityOfPage": url,
        "author": author,
        "publisher": publisher,
        "dateModified": issue.updated.isoformat(),
        # Paid-only issues say so (Google's "paywalled content" markup).
        "isAccessibleForFree": not issue.is_paid_only,
    }
    if issue.published_at:
        data["datePublished"] = issue.published_at.isoformat()
    if image is not None:
        data["image"] = image.url
    if issue.doi:
        data["identifier"] = {
            "@type": "PropertyValue",
            "propertyID": "DOI",
            "value": issue.doi,
            "url": issue.doi_url,
        }
        data["sameAs"] = issue.doi_url
    return data


def article_json_ld(issue: Issue, **kwargs) -> SafeString:
    """Return the <script type="application/ld+json"> element of the issue."""
    return format_html(
        '<script type="application/ld+json">{}</script>',
        json_for_script(article_data(issue, **kwargs)),
    )


@dataclass(frozen=True)
class ShareLink:
    name: str
    href: str


def share_links(issue: Issue, *, publication: Publication) -> list[ShareLink]:
    """Return plain links to each network's share page: nothing loads from them."""
    url = absolute_url(issue.get_absolute_url())
    title = issue.title
    text = f"{title} {url}"
    mail = urlencode({"subject": title, "body": f"{title}\n\n{url}"}, quote_via=quote)
    return [
        ShareLink("Email", f"mailto:?{mail}"),
        ShareLink("Bluesky", "https://bsky.app/intent/compose?" + _q(text=text)),
        ShareLink("X", "https://x.com/intent/post?" + _q(text=title, url=url)),
        ShareLink(
            "LinkedIn",
            "https://www.linkedin.com/sharing/share-offsite/?" + _q(url=url),
        ),
    ]


def _q(**params: str) -> str:
    return urlencode(params, quote_via=quote)


def mastodon_text(issue: Issue) -> str:
    """Return the post a Mastodon share starts with: the title and the address."""
    return f"{issue.title} {absolute_url(issue.get_absolute_url())}"


# A Mastodon server's host name, as readers type it: "mastodon.social",
# "https://fosstodon.org/", "@me@hachyderm.io". Only a name (and a port) is taken,
# so the link built from it always goes to that server's /share page.
_HOST = re.compile(
    r"(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(?::[0-9]{1,5})?"
)


def mastodon_instance(typed: str) -> str | None:
    """Return the server host a reader typed, or None when it is not one."""
    value = (typed or "").strip().lower()
    value = re.sub(r"^[a-z][a-z0-9+.-]*://", "", value)
    value = value.split("/", 1)[0]
    # "@me@server" or "me@server": the server is after the last "@".
    value = value.rsplit("@", 1)[-1]
    value = value.rstrip(".")
    return value if _HOST.fullmatch(value) else None


def mastodon_share_url(instance: str, issue: Issue) -> str:
    """Return the address of the share page on a Mastodon server."""
    return f"https://{instance}/share?" + _q(text=mastodon_text(issue))
