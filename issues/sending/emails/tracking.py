"""Tracked issue emails: the open pixel, signed click redirects and the hidden link.

The HTML is rewritten once per segment: each link becomes
``/r/<delivery part>/<link part>/``; the plain-text part's addresses of those links
get the same tracked address, with the same link number, so a click in either part
counts for the same link. The link part (send, link number, the target
address and their signature) is signed here, once; the delivery part (the delivery's
id and its signature) stands in as a placeholder and is the only thing made per
recipient, by one HMAC (``delivery_part``). The redirect goes only to the address
inside a link part whose signature holds, so no one can make Quire redirect
elsewhere. Link number 0 is the hidden link (``HONEYPOT``): no person can see, hear or
reach it, so whatever follows it is a machine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.urls import reverse

from newsletter.links import absolute_url
from newsletter.models import Publication

# Survives templates, escaping, CSS inlining and quoted-printable unchanged.
PH_TRACK = "QUIREPHTRACKINGPARTX7"
HONEYPOT = 0
_SIG_BYTES = 12
_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)
_BODY_END = re.compile(r"</body>", re.IGNORECASE)
# An address in plain text ends at white space, or at what cannot be in one.
_TEXT_URL = re.compile(r"https?://[^\s<>\"]+")
# What may follow an address in prose without being part of it.
_TRAILING = ".,;:!?)]'"


@cache
def _key(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"quire.tracking.{purpose}:{secret}".encode()).digest()


def _sign(purpose: str, message: str) -> str:
    # hmac.digest: the one-shot C path (once per recipient while sending).
    digest = hmac.digest(
        _key(settings.SECRET_KEY, purpose), message.encode(), hashlib.sha256
    )[:_SIG_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def delivery_part(delivery_id: int) -> str:
    """Return the per-recipient part of tracked addresses: the id and its HMAC."""
    return f"{delivery_id}.{_sign('d', str(delivery_id))}"


def read_delivery_part(part: str) -> int | None:
    """Return the delivery id a delivery part names, or None if it is forged."""
    ident, _, signature = part.partition(".")
    if not ident.isdigit() or len(ident) > 18:
        return None
    if not hmac.compare_digest(signature, _sign("d", ident)):
        return None
    return int(ident)


def link_part(*, send_id: int, number: int, url: str) -> str:
    """Return the signed part of a tracked link: which send, which link, where to."""
    encoded = _b64(url)
    signature = _sign("l", f"{send_id}.{number}.{encoded}")
    return f"{send_id}.{number}.{encoded}.{signature}"


@dataclass(frozen=True)
class Link:
    send_id: int
    number: int
    url: str


def read_link_part(part: str) -> Link | None:
    """Return the link a link part names, or None if anything in it was changed."""
    pieces = part.split(".")
    if len(pieces) != 4 or not pieces[0].isdigit() or not pieces[1].isdigit():
        return None
    send_id, number, encoded, signature = pieces
    if not hmac.compare_digest(signature, _sign("l", f"{send_id}.{number}.{encoded}")):
        return None
    try:
        url = _unb64(encoded)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not url.startswith(("https://", "http://")):
        return None
    return Link(int(send_id), int(number), url)


def redirect_prefix() -> str:
    """Return the absolute address tracked links start with (reverse() once)."""
    marker = "TRACKMARKER"
    url = absolute_url(reverse("analytics:click", args=[marker, marker]))
    return url.partition(marker)[0]


def pixel_url() -> str:
    """Return the open pixel's address with the placeholder for its delivery."""
    return absolute_url(reverse("analytics:open", args=[PH_TRACK]))


def _trackable(url: str) -> bool:
    if not url.startswith(("https://", "http://")):
        return False
    # The unsubscribe and address placeholders, and anything with one, stay as
    # they are: the one-click unsubscribe must reach its page unchanged.
    return "QUIREPH" not in url


def tracked_html(
    html_out: str,
    *,
    send_id: int,
    web_url: str,
    clicks: bool,
    opens: bool,
    keep: tuple[str, ...] = (),
) -> tuple[str, dict[str, int]]:
    """Return the segment's HTML with tracked links, the pixel and the hidden link,
    and the number of each tracked address (the hidden one, 0, left out).

    keep: addresses left as they are (the subscriber's own account page).
    """
    prefix = redirect_prefix()
    numbers: dict[str, int] = {}

    def rewrite(match: re.Match) -> str:
        url = html.unescape(match.group(2))
        if not _trackable(url) or url in keep:
            return match.group(0)
        number = numbers.setdefault(url, len(numbers) + 1)
        part = link_part(send_id=send_id, number=number, url=url)
        tracked = f"{prefix}{PH_TRACK}/{part}/"
        return f"{match.group(1)}{tracked}{match.group(3)}"

    out = _HREF.sub(rewrite, html_out) if clicks else html_out
    extra = []
    if clicks:
        part = link_part(send_id=send_id, number=HONEYPOT, url=web_url)
        hidden = f"{prefix}{PH_TRACK}/{part}/"
        # Hidden from sight, from screen readers and from the keyboard: only a
        # program that follows every address in the message reaches it.
        extra.append(
            '<div aria-hidden="true" style="display:none;max-height:0;'
            'overflow:hidden;mso-hide:all">'
            f'<a href="{html.escape(hidden)}" tabindex="-1">&#8203;</a></div>'
        )
    if opens:
        extra.append(
            f'<img src="{html.escape(pixel_url())}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0">'
        )
    addition = "".join(extra)
    if _BODY_END.search(out):
        out = _BODY_END.sub(lambda m: addition + m.group(0), out, count=1)
    else:
        out += addition
    return out, numbers


def tracked_text(text_out: str, *, send_id: int, numbers: dict[str, int]) -> str:
    """Return the segment's plain text with the HTML's tracked links tracked too.

    numbers: each address the HTML tracks and its link number (from tracked_html),
    so a link clicked in either part is the same link. An address the HTML does not
    link to (one in a code block, say) stays as it is, as do the unsubscribe and
    account addresses, which the HTML keeps too.
    """
    if not numbers:
        return text_out
    prefix = redirect_prefix()

    def rewrite(match: re.Match) -> str:
        url, tail = match.group(0), ""
        # "(https://example.org/a)." in prose: the address is without ")." unless
        # the HTML links to it with them.
        while url not in numbers and url and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        number = numbers.get(url)
        if number is None:
            return match.group(0)
        part = link_part(send_id=send_id, number=number, url=url)
        return f"{prefix}{PH_TRACK}/{part}/{tail}"

    return _TEXT_URL.sub(rewrite, text_out)


def tracking_enabled() -> tuple[bool, bool]:
    """Return whether the publication tracks opens and clicks (its settings)."""
    publication = Publication.load()
    return publication.track_opens, publication.track_clicks
