"""MIME made once per segment: quoted-printable parts split around placeholders.

``PreparedEmail.build`` joins those byte strings with each recipient's values.
"""

from __future__ import annotations

import email.utils
import html
import quopri
import re
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from .headers import CRLF, clean_header_text, format_address
from .tracking import PH_TRACK, delivery_part

# Placeholders survive templates, HTML escaping and CSS inlining unchanged.
PH_UNSUBSCRIBE = "QUIREPHUNSUBSCRIBEURLX7"
PH_EMAIL = "QUIREPHRECIPIENTEMAILX7"
PLACEHOLDERS = (PH_UNSUBSCRIBE, PH_EMAIL, PH_TRACK)
PLACEHOLDER_RE = re.compile(f"({'|'.join(PLACEHOLDERS)})")


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
    runs: list[tuple[bytes, ...] | str] = field(init=False, repr=False)
    stuffed_runs: list[tuple[bytes, ...] | str] = field(init=False, repr=False)

    @classmethod
    def encode(cls, text: str) -> _Part:
        chunks: list[bytes | str] = []
        for piece in PLACEHOLDER_RE.split(text):
            if piece in PLACEHOLDERS:
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

    def __post_init__(self) -> None:
        self.runs = _runs(self.chunks)
        self.stuffed_runs = _runs(self.stuffed)

    def build(self, values: dict[str, bytes], *, stuffed: bool = False) -> list[bytes]:
        track = values.get(PH_TRACK, b"")
        return [
            values[run] if isinstance(run, str) else track.join(run)
            for run in (self.stuffed_runs if stuffed else self.runs)
        ]


def _runs(chunks: list[bytes | str]) -> list[tuple[bytes, ...] | str]:
    """Group chunks into runs between placeholders other than the tracking one.

    A tracked email has its delivery's part in every link: within a run those
    places are filled by one ``bytes.join`` (in C) instead of a step per link.
    """
    runs: list[tuple[bytes, ...] | str] = []
    pieces: list[bytes] = []
    pending = b""
    for chunk in chunks:
        if chunk == PH_TRACK:
            pieces.append(pending)
            pending = b""
        elif isinstance(chunk, str):
            runs += [(*pieces, pending), chunk]
            pieces, pending = [], b""
        else:
            pending += chunk
    runs.append((*pieces, pending))
    return runs


_LEADING_DOT = re.compile(rb"(?m)^\.")
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")
# The Date header's value and the second it is for.
_date: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    """Date's value, formatted once a second: every message built in that second
    carries the same one."""
    global _date  # noqa: PLW0603 - a one-entry cache, replaced whole
    now = int(time.time())
    second, value = _date
    if second != now:
        value = email.utils.formatdate(now, usegmt=True).encode("ascii")
        _date = (now, value)
    return value


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
    # The delivery the message belongs to (0 for a test or a preview), and whether
    # the subscriber lets it be tracked: only then does it carry the pixel and
    # tracked links.
    delivery_id: int = 0
    tracking: bool = False

    @property
    def tracked(self) -> bool:
        return self.tracking and self.delivery_id > 0


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
    unsubscribe_prefix: str
    unsubscribe_suffix: str
    mailto: str
    message_domain: str
    extra: dict = field(default_factory=dict)
    # The HTML with the open pixel and tracked links (emails/tracking.py), for the
    # recipients who allow it; empty when the publication tracks nothing.
    tracked_html: str = ""
    # The plain text with the same links tracked; empty when clicks are not.
    tracked_text: str = ""
    # Encoded from text and html when the email is made (rendered or loaded).
    text_part: _Part = field(init=False, repr=False)
    html_part: _Part = field(init=False, repr=False)
    tracked_part: _Part | None = field(init=False, repr=False)
    tracked_text_part: _Part | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.text_part = _Part.encode(self.text)
        self.html_part = _Part.encode(self.html)
        self.tracked_part = (
            _Part.encode(self.tracked_html) if self.tracked_html else None
        )
        self.tracked_text_part = (
            _Part.encode(self.tracked_text) if self.tracked_text else None
        )

    def _html_part_for(self, recipient: Recipient) -> _Part:
        if self.tracked_part is not None and recipient.tracked:
            return self.tracked_part
        return self.html_part

    def _text_part_for(self, recipient: Recipient) -> _Part:
        if self.tracked_text_part is not None and recipient.tracked:
            return self.tracked_text_part
        return self.text_part

    def html_for(self, recipient: Recipient) -> str:
        """Return the HTML this recipient gets, placeholders still in it."""
        if self.tracked_html and recipient.tracked:
            return self.tracked_html
        return self.html

    def unsubscribe_url(self, token: str) -> str:
        return f"{self.unsubscribe_prefix}{token}{self.unsubscribe_suffix}"

    def stored_headers(self) -> dict:
        """Return what, besides html and text, rebuilds this email (JSON-safe)."""
        return {
            "subject": self.subject,
            "from_email": self.from_email,
            "from_header": self.from_header,
            # Header lines are ASCII (encoded words); latin-1 keeps any byte as is.
            "static_headers": self.static_headers.decode("latin-1"),
            "boundary": self.boundary,
            "unsubscribe_prefix": self.unsubscribe_prefix,
            "unsubscribe_suffix": self.unsubscribe_suffix,
            "mailto": self.mailto,
            "message_domain": self.message_domain,
            "extra": self.extra,
            "tracked_html": self.tracked_html,
            "tracked_text": self.tracked_text,
        }

    @classmethod
    def from_stored(
        cls, *, segment: str, html: str, text: str, headers: dict
    ) -> PreparedEmail:
        """Rebuild a rendered email from what stored_headers() and its parts kept.

        Only the quoted-printable encoding runs again (C code, a millisecond for a
        large issue); nothing is rendered or inlined.
        """
        return cls(
            segment=segment,
            subject=headers["subject"],
            from_email=headers["from_email"],
            from_header=headers["from_header"],
            html=html,
            text=text,
            static_headers=headers["static_headers"].encode("latin-1"),
            boundary=headers["boundary"],
            unsubscribe_prefix=headers["unsubscribe_prefix"],
            unsubscribe_suffix=headers["unsubscribe_suffix"],
            mailto=headers["mailto"],
            message_domain=headers["message_domain"],
            extra=dict(headers.get("extra") or {}),
            tracked_html=headers.get("tracked_html", ""),
            tracked_text=headers.get("tracked_text", ""),
        )

    def build(self, recipient: Recipient, *, dot_stuffed: bool = False) -> bytes:
        """Return the raw message for one recipient: substitutions and joins only.

        dot_stuffed: return it ready for SMTP's DATA (lines starting with "."
        doubled), using the chunks stuffed once per segment.
        """
        url = self.unsubscribe_url(recipient.token)
        token = recipient.token
        # Tokens are URL-safe already (secrets.token_urlsafe): quote() only for others.
        subject = (
            "unsubscribe%20" + token
            if _URL_SAFE.fullmatch(token)
            else quote("unsubscribe " + token)
        )
        mailto = f"{self.mailto}?subject={subject}"
        to = format_address(recipient.name, recipient.email)
        head = [
            b"To: ",
            clean_header_text(to).encode("utf-8"),
            CRLF,
            b"Date: ",
            _date_header(),
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
        html_part = self._html_part_for(recipient)
        text_part = self._text_part_for(recipient)
        if html_part is not self.html_part or text_part is not self.text_part:
            # One HMAC per recipient; every tracked link and the pixel share it.
            track = _qp_value(delivery_part(recipient.delivery_id))
            html_values[PH_TRACK] = text_values[PH_TRACK] = track
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
            *text_part.build(text_values, stuffed=dot_stuffed),
            CRLF,
            b"--",
            b,
            CRLF,
            b'Content-Type: text/html; charset="utf-8"\r\n',
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            *html_part.build(html_values, stuffed=dot_stuffed),
            CRLF,
            b"--",
            b,
            b"--",
            CRLF,
        ]
        return b"".join(head + body)

    def personalised_html(self, recipient: Recipient) -> str:
        url = self.unsubscribe_url(recipient.token)
        out = self.html_for(recipient)
        if recipient.tracked:
            out = out.replace(PH_TRACK, delivery_part(recipient.delivery_id))
        return out.replace(PH_UNSUBSCRIBE, html.escape(url)).replace(
            PH_EMAIL, html.escape(recipient.email)
        )

    def personalised_text(self, recipient: Recipient) -> str:
        url = self.unsubscribe_url(recipient.token)
        out = self.text
        if self.tracked_text and recipient.tracked:
            out = self.tracked_text.replace(
                PH_TRACK, delivery_part(recipient.delivery_id)
            )
        return out.replace(PH_UNSUBSCRIBE, url).replace(PH_EMAIL, recipient.email)
