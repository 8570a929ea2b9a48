"""Header lines: one line each, RFC 2047 where needed, and stable Message-IDs."""

from __future__ import annotations

import email.utils
from email.header import Header

from newsletter.mail import clean_header_text

CRLF = b"\r\n"


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


def message_domain(from_email: str) -> str:
    return from_email.rpartition("@")[2] or "localhost"


def message_id_for(*, delivery_id: int, send_id: int, domain: str) -> str:
    """Return the Message-ID of a delivery; the same on a re-send after a crash, so
    mail programs that see it twice can tell."""
    return f"quire.{send_id}.{delivery_id}@{domain}"
