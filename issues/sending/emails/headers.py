"""Header lines: one line each, RFC 2047 where needed, and stable Message-IDs."""

from __future__ import annotations

import email.utils
import re
from email.header import Header

from newsletter.mail import clean_header_text

CRLF = b"\r\n"
# A display name in From or List-Id: long enough for any real one; a longer value
# (stored by hand, straight into the database) is cut rather than sent.
NAME_LIMIT = 200
# What an RFC 2919 list identifier is made of: dot-separated atoms of letters,
# digits and hyphens (lower case by convention), 255 characters at most.
_NOT_IN_LIST_ID = re.compile(r"[^a-z0-9.-]+")
LIST_ID_LIMIT = 255


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


def display_name(value: str) -> str:
    """Return a display name for a header: one line, at most NAME_LIMIT characters."""
    return clean_header_text(value)[:NAME_LIMIT].strip()


def _encoded_words(name: str) -> str:
    # Several short encoded words on one line (RFC 2047 allows 75 characters
    # each), rather than one long word some mail programs refuse to decode.
    return Header(name, "utf-8").encode(linesep=" ", maxlinelen=75)


def format_address(name: str, address: str) -> str:
    """Return ``Name <address>``, RFC 2047 encoded when the name is not ASCII."""
    return email.utils.formataddr((clean_header_text(name), address), "utf-8")


def format_sender(name: str, address: str) -> str:
    """Return ``Name <address>`` for From or List-Id: on one line, the name cut
    to NAME_LIMIT, RFC 2047 encoded when it is not ASCII and quoted when it holds
    specials."""
    name = display_name(name)
    if not name or name.isascii():
        return email.utils.formataddr((name, address))
    return f"{_encoded_words(name)} <{address}>"


def list_identifier(*, list_id: str, slug: str, domain: str) -> str:
    """Return a list's identifier (RFC 2919): the newsletter's own when it is one,
    else ``<slug>.<domain>``.

    Whatever was stored, the result is made only of letters, digits, hyphens and
    dots, so it can stand between the angle brackets of a header.
    """

    def atoms(text: str) -> str:
        cleaned = _NOT_IN_LIST_ID.sub("-", clean_header_text(text).lower())
        return ".".join(
            part.strip("-") for part in cleaned.split(".") if part.strip("-")
        )

    own = atoms(list_id)
    if "." in own and len(own) <= LIST_ID_LIMIT:
        return own
    label = atoms(slug).replace(".", "-") or "newsletter"
    return f"{label}.{atoms(domain) or 'localhost'}"[:LIST_ID_LIMIT].strip(".-")


def list_id_header(*, name: str, identifier: str) -> tuple[str, bytes]:
    """Return the List-Id's value as text (for a provider's API) and its header
    line: ``Name <identifier>``, the name quoted or encoded as it needs."""
    text = email.utils.formataddr((display_name(name), identifier))
    line = format_sender(name, identifier)
    return text, f"List-Id: {line}".encode("ascii") + CRLF


def message_domain(from_email: str) -> str:
    return from_email.rpartition("@")[2] or "localhost"


def message_id_for(*, delivery_id: int, send_id: int, domain: str) -> str:
    """Return the Message-ID of a delivery; the same on a re-send after a crash, so
    mail programs that see it twice can tell."""
    return f"quire.{send_id}.{delivery_id}@{domain}"
