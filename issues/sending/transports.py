"""How prepared messages leave Quire: SMTP, any Django/anymail backend, the outbox.

Each transport sends one recipient's raw message and reports an ``Outcome``; it never
raises for a delivery problem. SMTP uses the connection Django's SMTP backend opens
(TLS, SSL, login, timeout as configured) and hands it the prepared bytes directly, so
many messages go over one connection with no MIME object per recipient. Where the
server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA leave in one write: a message
costs two round trips instead of four. One transport is one connection; a worker runs
many of them at once (delivery/sessions.py).
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import dkim
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from newsletter.mail import write_eml

from .emails import PreparedEmail, Recipient, dot_stuff

SENT, TRANSIENT, FAILED, BOUNCED = "sent", "transient", "failed", "bounced"

DKIM_HEADERS = [
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
]


@dataclass
class Outcome:
    kind: str
    error: str = ""
    message_id: str = ""
    # The connection is unusable: the next message opens a new one.
    connection_lost: bool = False
    # The server asked us to slow down (421, or a 4.7.x status): fewer sessions.
    slow_down: bool = False


@cache
def _dkim_key(value: str) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    return Path(value).read_bytes()


def dkim_enabled() -> bool:
    return bool(settings.DKIM_PRIVATE_KEY and settings.DKIM_SELECTOR)


def dkim_sign(raw: bytes) -> bytes:
    """Return raw with a DKIM-Signature header when a key is configured."""
    if not dkim_enabled():
        return raw
    domain = settings.DKIM_DOMAIN or _from_domain(raw)
    signature = dkim.sign(
        raw,
        settings.DKIM_SELECTOR.encode(),
        domain.encode(),
        _dkim_key(settings.DKIM_PRIVATE_KEY),
        include_headers=DKIM_HEADERS,
        linesep=b"\r\n",
    )
    return signature + raw


def _from_domain(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"from:"):
            return line.rsplit(b"@", 1)[-1].strip(b"> ").decode()
        if not line:
            break
    return "localhost"


def _smtp_outcome(code: int, message, *, recipient_level: bool) -> Outcome:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    error = f"{code} {text}".strip()
    if 400 <= code < 500:
        return Outcome(
            TRANSIENT,
            error,
            connection_lost=code == 421,
            # A 4.7.x at RCPT is about that recipient (greylisting), not about us.
            slow_down=code == 421 or (not recipient_level and is_throttling(text)),
        )
    # A permanent refusal of the address itself (RCPT: 550 user unknown, 5.1.x) is a
    # hard bounce; a refusal of the message (DATA) fails this row only.
    if recipient_level and (code in (550, 551, 553) or " 5.1." in f" {text}"):
        return Outcome(BOUNCED, error)
    return Outcome(FAILED, error)


def is_throttling(text: str) -> bool:
    """Whether a 4xx reply's enhanced status (RFC 3463) says 4.7.x: "too many
    connections, messages or recipients from you, try later"."""
    return bool(_THROTTLE_STATUS.match(text.lstrip()))


_THROTTLE_STATUS = re.compile(r"4\.7\.\d{1,3}\b")


def _nothing() -> None:
    return None


class Transport:
    """Send raw messages one recipient at a time over a reused connection."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def send(
        self,
        prepared: PreparedEmail,
        recipient: Recipient,
        *,
        before_accept: Callable[[], None] = _nothing,
    ) -> Outcome:
        """Send one message; call before_accept() before it can be accepted."""
        raise NotImplementedError


class SMTPTransport(Transport):
    def __init__(self) -> None:
        # Django's SMTP EmailBackend; get_connection() is typed as the base class.
        self.backend: Any = None
        # Messages sent over the current connection.
        self.messages = 0
        # After a refused transaction the next one starts with RSET.
        self._needs_reset = False
        self._unfinished_data = False

    @property
    def is_open(self) -> bool:
        return self.backend is not None and self.backend.connection is not None

    def open(self) -> None:
        """Connect (greeting, EHLO, TLS, login) unless connected; raises OSError or
        smtplib.SMTPException when the server cannot be reached."""
        self._connection().ehlo_or_helo_if_needed()

    @property
    def pipelining(self) -> bool:
        """Whether the open connection's server offers PIPELINING (RFC 2920)."""
        return self.is_open and bool(self.backend.connection.has_extn("pipelining"))

    def envelope(self, prepared: PreparedEmail, recipient: Recipient) -> Envelope:
        """The recipient's message, built (and signed) once, ready for exchange()."""
        return Envelope(
            prepared.from_email, recipient.email, _data(prepared, recipient)
        )

    def exchange(
        self, finishing: Envelope | None, starting: Envelope | None
    ) -> tuple[Outcome | None, Outcome | None]:
        """One flight over a pipelining connection: the content and final dot of
        `finishing` (its DATA was answered 354), then MAIL, RCPT and DATA of
        `starting`. RFC 2920 lets message content open a group and DATA close one,
        so a message costs one round trip.

        Returns finishing's outcome and starting's: None when its DATA was answered
        354 and it waits for its content (the next exchange's `finishing`). The
        caller commits finishing's "sending" mark before calling.
        """
        connection = self.backend.connection
        chunks: list[bytes] = []
        expected: list[str] = []
        if self._unfinished_data:
            # A DATA answered 354 after its recipient was refused: end it empty.
            chunks.append(b".\r\n")
            expected.append("orphan")
            self._unfinished_data = False
        if finishing is not None:
            data = finishing.data
            chunks += [data if data.endswith(b"\r\n") else data + b"\r\n", b".\r\n"]
            expected.append("finish")
        refused = None
        if starting is not None:
            if _UNSAFE_ADDRESS.search(starting.from_email) or _UNSAFE_ADDRESS.search(
                starting.to
            ):
                refused = Outcome(BOUNCED, "553 5.1.3 Bad address syntax")
            else:
                if self._needs_reset:
                    chunks.append(b"RSET\r\n")
                    expected.append("rset")
                    self._needs_reset = False
                size = (
                    f" SIZE={len(starting.data)}" if connection.has_extn("size") else ""
                )
                chunks.append(
                    f"MAIL FROM:<{starting.from_email}>{size}\r\n"
                    f"RCPT TO:<{starting.to}>\r\nDATA\r\n".encode()
                )
                expected += ["mail", "rcpt", "data"]
        replies: dict[str, tuple[int, bytes]] = {}
        lost: Outcome | None = None
        try:
            connection.send(b"".join(chunks))
            for label in expected:
                replies[label] = connection.getreply()
                if replies[label][0] == 421:
                    break
        except (smtplib.SMTPException, OSError) as exc:
            lost = Outcome(TRANSIENT, f"{type(exc).__name__}: {exc}", "", True)
        if lost is not None or any(code == 421 for code, _ in replies.values()):
            self._drop()
        lost = lost or Outcome(TRANSIENT, "421 closing", connection_lost=True)
        done = None
        if finishing is not None:
            done = self._finished(replies.get("finish"), lost)
        if starting is None or refused is not None:
            return done, refused
        return done, self._started(replies, lost)

    def _finished(self, reply: tuple[int, bytes] | None, lost: Outcome) -> Outcome:
        if reply is None:
            return lost
        code, text = reply
        if code == 250:
            self.messages += 1
            return Outcome(SENT)
        self._needs_reset = True
        return _smtp_outcome(code, text, recipient_level=False)

    def _started(
        self, replies: dict[str, tuple[int, bytes]], lost: Outcome
    ) -> Outcome | None:
        for label, ok, recipient_level in (
            ("mail", (250,), False),
            ("rcpt", (250, 251), True),
            ("data", (354,), False),
        ):
            reply = replies.get(label)
            if reply is None:
                return lost
            code, text = reply
            if code not in ok:
                self._needs_reset = True
                self._unfinished_data = replies.get("data", (0, b""))[0] == 354
                return _smtp_outcome(code, text, recipient_level=recipient_level)
        return None

    def _connection(self) -> smtplib.SMTP:
        if self.backend is None or self.backend.connection is None:
            self.messages = 0
            self._needs_reset = False
            self._unfinished_data = False
            self.backend = get_connection(fail_silently=False)
            self.backend.open()
            # The final "." goes out in its own small write (see _transmit); without
            # this, Nagle's algorithm holds it back until the server's delayed ACK.
            with contextlib.suppress(OSError, AttributeError):
                self.backend.connection.sock.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
                )
        return self.backend.connection

    def close(self) -> None:
        if self.backend is not None:
            with contextlib.suppress(Exception):  # a dead connection is closed
                self.backend.close()
            self.backend = None

    def abort(self) -> None:
        """Drop the connection without QUIT: a message whose DATA is open is
        discarded by the server, never delivered."""
        self._drop()

    def _drop(self) -> None:
        if self.backend is not None:
            with contextlib.suppress(Exception):
                self.backend.connection.close()
            self.backend.connection = None
            self.backend = None

    def send(
        self,
        prepared: PreparedEmail,
        recipient: Recipient,
        *,
        before_accept: Callable[[], None] = _nothing,
    ) -> Outcome:
        data = _data(prepared, recipient)
        try:
            connection = self._connection()
            _transmit(
                connection, prepared.from_email, recipient.email, data, before_accept
            )
        except smtplib.SMTPRecipientsRefused as exc:
            code, message = next(iter(exc.recipients.values()))
            return _smtp_outcome(code, message, recipient_level=True)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            outcome = _smtp_outcome(
                exc.smtp_code, exc.smtp_error, recipient_level=False
            )
            if outcome.connection_lost:
                self._drop()
            return outcome
        except smtplib.SMTPResponseException as exc:
            self._drop()
            outcome = _smtp_outcome(
                exc.smtp_code, exc.smtp_error, recipient_level=False
            )
            outcome.connection_lost = True
            return outcome
        except (smtplib.SMTPException, OSError) as exc:
            # Dropped connection, refused connection, timeout: try again later.
            self._drop()
            return Outcome(TRANSIENT, f"{type(exc).__name__}: {exc}", "", True)
        except BaseException:
            # before_accept failed (the database): the server must not accept it.
            self._drop()
            raise
        self.messages += 1
        return Outcome(SENT, message_id=recipient.message_id)


@dataclass
class Envelope:
    """One message on its way over SMTP: sender, recipient, dot-stuffed content."""

    from_email: str
    to: str
    data: bytes


def _data(prepared: PreparedEmail, recipient: Recipient) -> bytes:
    if dkim_enabled():
        return dot_stuff(dkim_sign(prepared.build(recipient)))
    return prepared.build(recipient, dot_stuffed=True)


def _transmit(
    connection: smtplib.SMTP,
    from_email: str,
    to: str,
    data: bytes,
    before_accept: Callable[[], None],
) -> None:
    """smtplib's sendmail for one recipient and a dot-stuffed message, pausing
    before the final dot.

    The message is accepted only when the server answers the "." that ends DATA;
    before sending it, before_accept() waits for our own bookkeeping, which in the
    meantime ran in parallel with MAIL, RCPT, DATA and the upload of the body.
    """
    if _UNSAFE_ADDRESS.search(from_email) or _UNSAFE_ADDRESS.search(to):
        raise smtplib.SMTPRecipientsRefused({to: (553, b"5.1.3 Bad address syntax")})
    connection.ehlo_or_helo_if_needed()
    size = f" SIZE={len(data)}" if connection.has_extn("size") else ""
    mail = f"MAIL FROM:<{from_email}>{size}"
    rcpt = f"RCPT TO:<{to}>"
    if connection.has_extn("pipelining"):
        # One write, then the three replies in order; a 421 closes the connection,
        # so nothing follows it.
        connection.send(f"{mail}\r\n{rcpt}\r\nDATA\r\n")
        replies = []
        for _ in range(3):
            replies.append(connection.getreply())
            if replies[-1][0] == 421:
                break
    else:
        replies = []
        for command, ok in ((mail, (250,)), (rcpt, (250, 251)), ("DATA", (354,))):
            connection.send(f"{command}\r\n")
            replies.append(connection.getreply())
            if replies[-1][0] not in ok:
                break
    code, reply = replies[0]
    if code != 250:
        _abandon(connection, code, replies)
        raise smtplib.SMTPSenderRefused(code, reply, from_email)
    code, reply = replies[1]
    if code not in (250, 251):
        _abandon(connection, code, replies)
        raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
    code, reply = replies[2]
    if code != 354:
        _abandon(connection, code, replies)
        raise smtplib.SMTPDataError(code, reply)
    connection.send(data if data.endswith(b"\r\n") else data + b"\r\n")
    before_accept()
    connection.send(b".\r\n")
    code, reply = connection.getreply()
    if code != 250:
        if code == 421:
            connection.close()
        else:
            connection._rset()  # type: ignore[attr-defined]
        raise smtplib.SMTPDataError(code, reply)


def _abandon(
    connection: smtplib.SMTP, code: int, replies: list[tuple[int, bytes]]
) -> None:
    """Leave a refused transaction: close on 421, else reset for the next message.

    A pipelined DATA may have been accepted (354) although MAIL or RCPT was not; the
    empty message that ends it has no recipient, and RSET discards it.
    """
    if code == 421:
        connection.close()
        return
    if len(replies) == 3 and replies[2][0] == 354:
        connection.send(b".\r\n")
        connection.getreply()
    # smtplib's own RSET that ignores a dropped connection (not in typeshed).
    connection._rset()  # type: ignore[attr-defined]


_UNSAFE_ADDRESS = re.compile(r"[\s<>]")


class OutboxTransport(Transport):
    """Write each message as an .eml file (the embedded default)."""

    def __init__(self) -> None:
        self.folder = Path(settings.EMAIL_OUTBOX_DIR)
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(
        self,
        prepared: PreparedEmail,
        recipient: Recipient,
        *,
        before_accept: Callable[[], None] = _nothing,
    ) -> Outcome:
        raw = dkim_sign(prepared.build(recipient))
        before_accept()
        try:
            write_eml(self.folder, raw)
        except OSError as exc:
            return Outcome(TRANSIENT, f"outbox: {exc}")
        return Outcome(SENT, message_id=recipient.message_id)


class BackendTransport(Transport):
    """Any other Django email backend, e.g. a django-anymail provider."""

    def __init__(self) -> None:
        self.connection = get_connection(fail_silently=False)
        self.opened = False

    def close(self) -> None:
        if self.opened:
            self.connection.close()

    def send(
        self,
        prepared: PreparedEmail,
        recipient: Recipient,
        *,
        before_accept: Callable[[], None] = _nothing,
    ) -> Outcome:
        url = prepared.unsubscribe_url(recipient.token)
        message = EmailMultiAlternatives(
            subject=prepared.subject,
            body=prepared.personalised_text(recipient),
            from_email=prepared.from_header,
            to=[recipient.email],
            headers={
                "Message-ID": f"<{recipient.message_id}>",
                "List-Unsubscribe": f"<{url}>, <{prepared.mailto}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": prepared.extra.get("list_id", ""),
            },
        )
        message.attach_alternative(prepared.personalised_html(recipient), "text/html")
        before_accept()
        try:
            if not self.opened:
                self.connection.open()
                self.opened = True
            self.connection.send_messages([message])
        except AnymailRecipientsRefused as exc:
            return Outcome(BOUNCED, describe_error(exc))
        except AnymailAPIError as exc:
            status = getattr(exc, "status_code", None)
            if status is None or status == 429 or status >= 500:
                return Outcome(TRANSIENT, describe_error(exc))
            return Outcome(FAILED, describe_error(exc))
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome(TRANSIENT, f"{type(exc).__name__}: {exc}", "", True)
        status = getattr(message, "anymail_status", None)
        esp_id = getattr(status, "message_id", None) if status else None
        return Outcome(SENT, message_id=str(esp_id or recipient.message_id))


def describe_error(exc: Exception) -> str:
    """A provider's error as one line for the delivery's record."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - anymail's str() needs a response object
        text = f"{type(exc).__name__}: {exc.args[0] if exc.args else ''}"
    status = getattr(exc, "status_code", None)
    if status and str(status) not in text:
        text = f"{status} {text}"
    return text[:1000]


def open_transport() -> Transport:
    """Return the transport for the configured EMAIL_BACKEND."""
    backend = settings.EMAIL_BACKEND
    if backend == "django.core.mail.backends.smtp.EmailBackend":
        return SMTPTransport()
    if backend == "newsletter.mail.OutboxBackend":
        return OutboxTransport()
    return BackendTransport()
