"""Issue emails: rendered once per audience segment, personalised by substitution.

``render_segment`` renders the templates in ``templates/email/`` once for a segment
(free or paid), inlines the CSS and encodes both parts as quoted-printable MIME with
placeholders for what differs per recipient. ``PreparedEmail.build`` then only joins
byte strings: no template render and no MIME object per recipient.

The parts: ``headers`` (header lines and Message-IDs), ``links`` (the pages an email
links to), ``text`` (the plain-text part) and ``mime`` (the prepared message). Rendering
stays here, so ``render_send`` finds ``render_segment`` in this module.
"""

from __future__ import annotations

import secrets
from typing import Any

import css_inline
from django.template.loader import render_to_string

from issues.models import Issue
from issues.reading import readable_body
from issues.rendering import pygments_css, without_heading_anchors, without_sidenotes
from issues.rendering.mathimages import math_as_images
from newsletter.links import absolute_url, absolutize
from newsletter.models import Publication
from subscribers.billing import stripe_api

from ..models import Delivery
from .headers import (
    CRLF,
    clean_header_text,
    display_name,
    encode_header,
    format_sender,
    list_id_header,
    list_identifier,
    message_domain,
    message_id_for,
)
from .links import account_url, pricing_url, unsubscribe_url_parts
from .mime import PH_EMAIL, PH_UNSUBSCRIBE, PreparedEmail, Recipient, dot_stuff
from .text import email_plain_text
from .tracking import tracked_html, tracked_text

__all__ = [
    "PreparedEmail",
    "Recipient",
    "dot_stuff",
    "message_id_for",
    "render_segment",
    "render_send",
]


def _issue_html(issue: Issue, segment: str) -> tuple[str, bool]:
    """Return the body HTML for a segment and whether the free reader misses some."""
    # The same rule as the web page: a paid-only issue without a paywall break has
    # no free part at all (its free_html is the whole body).
    body = readable_body(issue, paid_access=segment == Delivery.Segment.PAID)
    return body.html, body.locked


def _email_body(body_html: str, *, web_url: str) -> str:
    """Return stored issue HTML ready for email: absolute links, no permalinks."""
    # Stored HTML links site-relative (/papers/…/); a mail program has no site to
    # resolve them against. Heading permalinks only make sense on the web page, and
    # sidenotes need its stylesheet: an email keeps the endnotes. Mail programs
    # draw no MathML: each formula becomes a stored image.
    body_html = without_sidenotes(without_heading_anchors(body_html))
    return absolutize(math_as_images(body_html), base=web_url)


def render_segment(
    *, issue: Issue, segment: str, test: bool = False, send_id: int | None = None
) -> PreparedEmail:
    """Render the issue's email for one audience segment (free or paid), once.

    send_id: the send it goes out with; only then is a tracked variant made (when
    the publication tracks opens or clicks) and the unsubscribe link names the
    issue, so that leaving counts against it.
    """
    publication = Publication.load()
    body_html, has_more = _issue_html(issue, segment)
    site_url = absolute_url("/")
    # A welcome email is not on the site: it has no web version to link to.
    web_url = (
        ""
        if issue.kind == Issue.Kind.WELCOME
        else absolute_url(issue.get_absolute_url())
    )
    context: dict[str, Any] = {
        "publication": publication,
        "issue": issue,
        "body_html": _email_body(body_html, web_url=web_url or site_url),
        "segment": segment,
        "has_more": has_more,
        "web_url": web_url,
        "upgrade_url": pricing_url(),
        "account_url": account_url(),
        # The same flag the web pages get (subscribers.billing.context_processors).
        "paid_enabled": stripe_api.is_configured(),
        "unsubscribe_url": PH_UNSUBSCRIBE,
        "recipient_email": PH_EMAIL,
        "site_url": site_url,
        "cover_url": absolute_url(issue.cover_image.url) if issue.cover_image else "",
        "test": test,
        "extra_css": pygments_css(),
    }
    raw_html = render_to_string("email/issue.html", context)
    inlined = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    html_out = inlined.inline(raw_html)
    context["body_text"] = email_plain_text(context["body_html"])
    text_out = render_to_string("email/issue.txt", context)

    # Each newsletter sends under its own name and list; issue.newsletter is
    # fetched once and kept on the issue for the other segment.
    newsletter = issue.newsletter
    from_email = publication.sender_address
    from_header = format_sender(
        display_name(newsletter.sender_name) or publication.sender_display_name,
        from_email,
    )
    subject = clean_header_text(issue.title)
    if test:
        subject = f"[Test] {subject}"
    domain = message_domain(from_email)
    list_id, list_id_line = list_id_header(
        name=display_name(newsletter.name) or publication.sender_display_name,
        identifier=list_identifier(
            list_id=newsletter.list_id, slug=newsletter.slug, domain=domain
        ),
    )
    static = [
        b"From: " + from_header.encode("ascii") + CRLF,
        encode_header("Subject", subject),
        list_id_line,
        b"MIME-Version: 1.0\r\n",
    ]
    if test:
        static.append(b"X-Quire-Test: yes\r\n")
    boundary = f"=_quire_{secrets.token_hex(12)}"
    static.append(
        f'Content-Type: multipart/alternative; boundary="{boundary}"'.encode("ascii")
        + CRLF
    )
    prefix, suffix = unsubscribe_url_parts()
    tracked = tracked_plain = ""
    extra: dict[str, Any] = {"list_id": list_id}
    if send_id is not None and not test:
        suffix += f"?issue={issue.pk}"
        if publication.track_opens or publication.track_clicks:
            tracked, numbers = tracked_html(
                html_out,
                send_id=send_id,
                web_url=web_url or site_url,
                clicks=publication.track_clicks,
                opens=publication.track_opens,
                keep=(context["account_url"],),
            )
            extra["tracked_links"] = len(numbers)
            if numbers:
                tracked_plain = tracked_text(text_out, send_id=send_id, numbers=numbers)
    return PreparedEmail(
        segment=segment,
        subject=subject,
        from_email=from_email,
        from_header=from_header,
        html=html_out,
        text=text_out,
        static_headers=b"".join(static),
        boundary=boundary,
        unsubscribe_prefix=prefix,
        unsubscribe_suffix=suffix,
        mailto=f"mailto:{from_email}",
        message_domain=domain,
        extra=extra,
        tracked_html=tracked,
        tracked_text=tracked_plain,
    )


def render_send(
    issue: Issue, *, send_id: int | None = None
) -> dict[str, PreparedEmail]:
    """Render both segments of an issue's email."""
    return {
        segment: render_segment(issue=issue, segment=segment, send_id=send_id)
        for segment in Delivery.Segment.values
    }
