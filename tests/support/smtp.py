"""A real SMTP server for tests, built on aiosmtpd."""

import email
import email.policy
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Return an SMTP reply such as "451 4.3.0 try later" to refuse a recipient at
    # RCPT time, or None to accept it.
    rcpt_hook: Callable[[str], str | None] | None = None
    # Return a reply to refuse the whole message at DATA time, or None to accept.
    data_hook: Callable[[Envelope], str | None] | None = None
    # Offer PIPELINING (RFC 2920) in the EHLO reply, as most relays do; aiosmtpd
    # reads commands in order, so pipelined ones are answered in order.
    pipelining: bool = True

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server, session: Session, envelope: Envelope, address, rcpt_options
    ):
        if self.rcpt_hook is not None:
            reply = self.rcpt_hook(address)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope):
        if self.data_hook is not None:
            reply = self.data_hook(envelope)
            if reply:
                return reply
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message, raw)
            )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SMTPSink:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.handler = _Handler()
        self.controller = Controller(
            self.handler, hostname=self.host, port=self.port, data_size_limit=0
        )

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def recipients(self) -> list[str]:
        return [rcpt for m in self.messages for rcpt in m.rcpt_tos]

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
