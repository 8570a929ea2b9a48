"""Site-wide email pieces: header hygiene, the one sender of templated account and
billing email, and the embedded default's outbox."""

import re
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.template.loader import render_to_string
from django.utils import timezone

_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
# The part before the @ that every mail server takes: RFC 5321 atoms, ASCII only
# (anything else needs SMTPUTF8, which many servers and providers refuse).
_ASCII_LOCAL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)


def clean_header_text(value: str) -> str:
    """Return value on one line: no CR, LF or other control characters."""
    return " ".join(_HEADER_UNSAFE.sub(" ", value or "").split())


def validate_one_line(value: str) -> None:
    """Refuse text with line breaks or control characters (it goes into headers)."""
    if _HEADER_UNSAFE.search(value or ""):
        raise ValidationError(
            "Write it on one line: it goes into the headers of every email, where "
            "a line break or control character is not allowed.",
            code="not_one_line",
        )


def sending_address(address: str) -> str | None:
    """Return the address as SMTP and a From header take it, or None if unusable.

    The domain may be international (exämple.org): it is sent in its ASCII (IDNA)
    form. The part before the @ must already be ASCII.
    """
    local, at, domain = (address or "").strip().rpartition("@")
    if not at or not _ASCII_LOCAL.fullmatch(local) or _HEADER_UNSAFE.search(domain):
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if not ascii_domain or " " in ascii_domain:
        return None
    return f"{local}@{ascii_domain}"


def validate_sender_address(value: str) -> None:
    """Refuse a sender address that mail servers would not take."""
    local = (value or "").rpartition("@")[0]
    if value and not local.isascii():
        raise ValidationError(
            "Use only plain letters, digits and . _ + - before the @ (%(local)s "
            "has others, which many mail servers refuse); the domain after the @ "
            "may be in any script.",
            code="not_ascii",
            params={"local": local},
        )


def send_templated_email(
    *, to: str, template: str, subject: str, context: dict, from_email: str
) -> None:
    """Send one email rendered from <template>.txt and <template>.html.

    The subject is put on one line (clean_header_text): it may hold names an author
    typed. Issues are not sent this way but by issues.sending, rendered once per
    segment.
    """
    message = EmailMultiAlternatives(
        subject=clean_header_text(subject),
        body=render_to_string(f"{template}.txt", context),
        from_email=from_email,
        to=[to],
    )
    message.attach_alternative(
        render_to_string(f"{template}.html", context), "text/html"
    )
    message.send()


def write_eml(folder: Path, raw: bytes) -> Path:
    """Write one raw message as a new .eml file in folder; return its path.

    The one writer of the outbox: Django's email backend below and sending's outbox
    transport (issues.sending.transports) both use it.
    """
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S-%f")
    path = folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(raw)
    tmp.rename(path)  # a reader never sees half a message
    return path


class OutboxBackend(BaseEmailBackend):
    """Write each message as one .eml file that any mail program can open."""

    def __init__(self, *, outbox_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.outbox_dir = Path(outbox_dir or settings.EMAIL_OUTBOX_DIR)

    def send_messages(self, email_messages) -> int:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            write_eml(self.outbox_dir, message.message().as_bytes(linesep="\r\n"))
            sent += 1
        return sent
