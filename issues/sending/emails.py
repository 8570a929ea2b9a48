"""Issue emails: rendered once per audience segment, personalised by substitution.

``render_segment`` renders the templates in ``templates/email/`` once for a segment
(free or paid), inlines the CSS and encodes both parts as quoted-printable MIME with
placeholders for what differs per recipient. ``PreparedEmail.build`` then only joins
byte strings: no template render and no MIME object per recipient.
"""

from __future__ import annotations

import email.utils
import html
import quopri
import re
import secrets
from dataclasses import dataclass, field
from email.header import Header
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import css_inline
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from issues.models import Issue
from newsletter.models import Publication

from .models import Delivery

# Placeholders survive templates, HTML escaping and CSS inlining unchanged.
PH_UNSUBSCRIBE = "QUIREPHUNSUBSCRIBEURLX7"
PH_EMAIL = "QUIREPHRECIPIENTEMAILX7"
PLACEHOLDER_RE = re.compile(f"({PH_UNSUBSCRIBE}|{PH_EMAIL})")
CRLF = b"\r\n"
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def clean_header_text(value: str) -> str:
    """Return value on one line: no CR, LF or other control characters."""
    return " ".join(_HEADER_UNSAFE.sub(" ", value or "").split())


def encode_header(name: str, value: str) -> bytes:
    """Return a folded ``Name: value`` header line (RFC 2047 when not ASCII)."""
    value = clean_header_text(value)
    try:
        value.encode("ascii")
        charset = "us-ascii"
    except UnicodeEncodeError:
        charset = "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}".encode("ascii") + CRLF


def format_address(name: str, address: str) -> str:
    """Return ``Name <address>``, RFC 2047 encoded when the name is not ASCII."""
    return email.utils.formataddr((clean_header_text(name), address), "utf-8")


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


class _TextExtractor(HTMLParser):
    """Turn rendered issue HTML into a readable plain-text email body."""

    BLOCK = {"p", "div", "section", "article", "table", "tr", "blockquote", "pre"}
    HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[str | None] = []
        self.pre = 0
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag in self.BLOCK or tag in self.HEADINGS:
            self.out.append("\n\n")
            if tag in self.HEADINGS:
                self.out.append("#" * int(tag[1]) + " ")
            if tag == "pre":
                self.pre += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "a":
            self.links.append(attrs.get("href"))
        elif tag == "img" and attrs.get("alt"):
            self.out.append(f"[{attrs['alt']}]")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("#"):
                self.out.append(f" ({href})")
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self.out.append("\n\n")
        elif tag in self.BLOCK or tag in self.HEADINGS:
            self.out.append("\n\n")

    def handle_data(self, data):
        if self.skip:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        text = "".join(self.out)
        lines = [line.rstrip() for line in text.splitlines()]
        text = "\n".join(
            line.lstrip() if line.startswith(" ") else line for line in lines
        )
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def html_to_text(html_text: str) -> str:
    """Return a plain-text version of rendered HTML, paragraphs kept."""
    parser = _TextExtractor()
    parser.feed(html_text)
    parser.close()
    return parser.text()


def _qp(text: str) -> bytes:
    """Quoted-printable encode text (UTF-8) with CRLF line ends."""
    encoded = quopri.encodestring(text.encode("utf-8").replace(b"\r\n", b"\n"))
    return encoded.replace(b"\n", b"\r\n")


@dataclass
class _Part:
    """A quoted-printable body part split around its placeholders."""

    chunks: list[bytes | str] = field(default_factory=list)
    # The same chunks dot-stuffed for SMTP's DATA, done once here instead of once
    # per recipient: every chunk starts at the beginning of a line.
    stuffed: list[bytes | str] = field(default_factory=list)

    @classmethod
    def encode(cls, text: str) -> _Part:
        chunks: list[bytes | str] = []
        for piece in PLACEHOLDER_RE.split(text):
            if piece in (PH_UNSUBSCRIBE, PH_EMAIL):
                chunks.append(piece)
            elif piece:
                # A soft line break ("=" CRLF) closes each literal chunk so that the
                # value substituted after it starts on a fresh line, and lines stay
                # within quoted-printable's 76 characters whatever the value's length.
                encoded = _qp(piece)
                if not encoded.endswith(CRLF):
                    encoded += b"=" + CRLF
                chunks.append(encoded)
        stuffed = [dot_stuff(c) if isinstance(c, bytes) else c for c in chunks]
        return cls(chunks, stuffed)

    def build(self, values: dict[str, bytes], *, stuffed: bool = False) -> list[bytes]:
        return [
            chunk if isinstance(chunk, bytes) else values[chunk]
            for chunk in (self.stuffed if stuffed else self.chunks)
        ]


_LEADING_DOT = re.compile(rb"(?m)^\.")


def dot_stuff(data: bytes) -> bytes:
    """Double every dot that starts a line, as SMTP's DATA requires (RFC 5321)."""
    return _LEADING_DOT.sub(b"..", data)


def _qp_value(value: str) -> bytes:
    encoded = _qp(value)
    return encoded if encoded.endswith(CRLF) else encoded + b"=" + CRLF


@dataclass
class Recipient:
    email: str
    name: str = ""
    token: str = ""
    message_id: str = ""


@dataclass
class PreparedEmail:
    """One segment's email, ready to be personalised and sent many times."""

    segment: str
    subject: str
    from_email: str
    from_header: str
    html: str
    text: str
    static_headers: bytes
    boundary: str
    text_part: _Part
    html_part: _Part
    unsubscribe_prefix: str
    unsubscribe_suffix: str
    mailto: str
    message_domain: str
    extra: dict = field(default_factory=dict)

    def unsubscribe_url(self, token: str) -> str:
        return f"{self.unsubscribe_prefix}{token}{self.unsubscribe_suffix}"

    def build(self, recipient: Recipient, *, dot_stuffed: bool = False) -> bytes:
        """Return the raw message for one recipient: substitutions and joins only.

        dot_stuffed: return it ready for SMTP's DATA (lines starting with "."
        doubled), using the chunks stuffed once per segment.
        """
        url = self.unsubscribe_url(recipient.token)
        mailto = f"{self.mailto}?subject={quote('unsubscribe ' + recipient.token)}"
        to = format_address(recipient.name, recipient.email)
        head = [
            b"To: ",
            clean_header_text(to).encode("utf-8"),
            CRLF,
            b"Date: ",
            email.utils.formatdate(usegmt=True).encode("ascii"),
            CRLF,
            b"Message-ID: <",
            recipient.message_id.encode("ascii"),
            b">",
            CRLF,
            b"List-Unsubscribe: <",
            url.encode("ascii"),
            b">, <",
            mailto.encode("ascii"),
            b">",
            CRLF,
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            CRLF,
            self.static_headers,
            CRLF,
        ]
        text_values = {
            PH_UNSUBSCRIBE: _qp_value(url),
            PH_EMAIL: _qp_value(recipient.email),
        }
        html_values = {
            PH_UNSUBSCRIBE: _qp_value(html.escape(url)),
            PH_EMAIL: _qp_value(html.escape(recipient.email)),
        }
        if dot_stuffed:
            for values in (text_values, html_values):
                for key, value in values.items():
                    values[key] = dot_stuff(value)
        b = self.boundary.encode("ascii")
        body = [
            b"--",
            b,
            CRLF,
            b'Content-Type: text/plain; charset="utf-8"\r\n',
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            *self.text_part.build(text_values, stuffed=dot_stuffed),
            CRLF,
            b"--",
            b,
            CRLF,
            b'Content-Type: text/html; charset="utf-8"\r\n',
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            *self.html_part.build(html_values, stuffed=dot_stuffed),
            CRLF,
            b"--",
            b,
            b"--",
            CRLF,
        ]
        return b"".join(head + body)

    def personalised_html(self, recipient: Recipient) -> str:
        url = self.unsubscribe_url(recipient.token)
        return self.html.replace(PH_UNSUBSCRIBE, html.escape(url)).replace(
            PH_EMAIL, html.escape(recipient.email)
        )

    def personalised_text(self, recipient: Recipient) -> str:
        url = self.unsubscribe_url(recipient.token)
        return self.text.replace(PH_UNSUBSCRIBE, url).replace(PH_EMAIL, recipient.email)


def message_domain(from_email: str) -> str:
    return from_email.rpartition("@")[2] or "localhost"


def message_id_for(*, delivery_id: int, send_id: int, domain: str) -> str:
    """Return the Message-ID of a delivery; the same on a re-send after a crash, so
    mail programs that see it twice can tell."""
    return f"quire.{send_id}.{delivery_id}@{domain}"


def _issue_html(issue: Issue, segment: str) -> tuple[str, bool]:
    """Return the body HTML for a segment and whether the free reader misses some."""
    from issues.reading import readable_body

    # The same rule as the web page: a paid-only issue without a paywall break has
    # no free part at all (its free_html is the whole body).
    body = readable_body(issue, paid_access=segment == Delivery.Segment.PAID)
    return body.html, body.locked


def _email_css() -> str:
    try:
        from issues.rendering import pygments_css
    except ImportError:  # pragma: no cover - the renderer always has it
        return ""
    return pygments_css()


def render_segment(*, issue: Issue, segment: str, test: bool = False) -> PreparedEmail:
    """Render the issue's email for one audience segment (free or paid), once."""
    publication = Publication.load()
    body_html, has_more = _issue_html(issue, segment)
    web_url = absolute_url(issue.get_absolute_url())
    context = {
        "publication": publication,
        "issue": issue,
        "body_html": absolutize(body_html),
        "segment": segment,
        "has_more": has_more,
        "web_url": web_url,
        "upgrade_url": _pricing_url(),
        "unsubscribe_url": PH_UNSUBSCRIBE,
        "recipient_email": PH_EMAIL,
        "site_url": settings.SITE_URL,
        "cover_url": absolute_url(issue.cover_image.url) if issue.cover_image else "",
        "test": test,
        "extra_css": _email_css(),
    }
    raw_html = render_to_string("email/issue.html", context)
    inlined = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    html_out = inlined.inline(raw_html)
    context["body_text"] = html_to_text(context["body_html"])
    text_out = render_to_string("email/issue.txt", context)

    sender_name = publication.sender_name or publication.name
    from_email = publication.sender_email
    subject = clean_header_text(issue.title)
    if test:
        subject = f"[Test] {subject}"
    domain = message_domain(from_email)
    list_id = f"{clean_header_text(publication.name)} <newsletter.{domain}>"
    static = [
        b"From: "
        + clean_header_text(format_address(sender_name, from_email)).encode("ascii")
        + CRLF,
        encode_header("Subject", subject),
        encode_header("List-Id", list_id),
        b"MIME-Version: 1.0\r\n",
    ]
    if test:
        static.append(b"X-Quire-Test: yes\r\n")
    boundary = f"=_quire_{secrets.token_hex(12)}"
    static.append(
        f'Content-Type: multipart/alternative; boundary="{boundary}"'.encode("ascii")
        + CRLF
    )
    prefix, suffix = _unsubscribe_url_parts()
    return PreparedEmail(
        segment=segment,
        subject=subject,
        from_email=from_email,
        from_header=format_address(sender_name, from_email),
        html=html_out,
        text=text_out,
        static_headers=b"".join(static),
        boundary=boundary,
        text_part=_Part.encode(text_out),
        html_part=_Part.encode(html_out),
        unsubscribe_prefix=prefix,
        unsubscribe_suffix=suffix,
        mailto=f"mailto:{from_email}",
        message_domain=domain,
        extra={"list_id": list_id},
    )


def render_send(issue: Issue) -> dict[str, PreparedEmail]:
    """Render both segments of an issue's email."""
    return {
        segment: render_segment(issue=issue, segment=segment)
        for segment in Delivery.Segment.values
    }
