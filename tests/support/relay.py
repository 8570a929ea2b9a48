"""An SMTP relay for the session tests: offers PIPELINING, keeps what each
connection's reads carried, caps concurrent connections, and can say "slow down".

aiosmtpd (tests/support/smtp.py) answers as a full server; this one is a few lines
of asyncio so that a test can see flights (which commands arrived in one read) and
the connections open at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Connection:
    # Every read, as it arrived.
    reads: list[bytes] = field(default_factory=list)
    messages: int = 0


@dataclass
class Relay:
    """Accepts every message; `most_connections` greets the ones beyond it with 421."""

    most_connections: int = 0
    # Return a reply to refuse this MAIL (e.g. "451 4.7.0 slow down"), or None.
    mail_hook: Callable[[int], str | None] | None = None
    connections: list[Connection] = field(default_factory=list)
    received: Counter = field(default_factory=Counter)
    refused_connections: int = 0
    most_open: int = 0
    _open: int = 0
    _mails: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host = "127.0.0.1"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def stop(self) -> None:
        async def close():
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._session, self.host, self.port, limit=1 << 22
        )

    async def _session(self, reader, writer) -> None:
        with self._lock:
            full = bool(self.most_connections) and self._open >= self.most_connections
            if full:
                self.refused_connections += 1
            else:
                self._open += 1
                self.most_open = max(self.most_open, self._open)
        if full:
            writer.write(b"421 4.7.0 Too many connections, slow down\r\n")
            await writer.drain()
            writer.close()
            return
        connection = Connection()
        with self._lock:
            self.connections.append(connection)
        try:
            await self._converse(reader, writer, connection)
        finally:
            with self._lock:
                self._open -= 1
            writer.close()

    async def _converse(self, reader, writer, connection: Connection) -> None:
        buffer = b""
        rcpt: list[str] = []
        rcpt_refused = False
        in_data = False
        writer.write(b"220 relay ESMTP\r\n")
        await writer.drain()
        while True:
            chunk = await reader.read(1 << 20)
            if not chunk:
                return
            connection.reads.append(chunk)
            buffer += chunk
            replies = []
            while True:
                if in_data:
                    end = buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    buffer = buffer[end + 5 :]
                    in_data = False
                    connection.messages += 1
                    with self._lock:
                        self.received.update(rcpt)
                    rcpt = []
                    replies.append(b"250 queued")
                    continue
                line, sep, rest = buffer.partition(b"\r\n")
                if not sep:
                    break
                buffer = rest
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    replies.append(b"250-relay\r\n250-PIPELINING\r\n250 SIZE 0")
                elif verb == b"MAIL":
                    with self._lock:
                        self._mails += 1
                        number = self._mails
                    refusal = self.mail_hook(number) if self.mail_hook else None
                    replies.append(refusal.encode() if refusal else b"250 OK")
                    rcpt = [] if refusal else rcpt
                    rcpt_refused = bool(refusal)
                elif verb == b"RCPT":
                    if rcpt_refused:
                        replies.append(b"503 5.5.1 MAIL first")
                    else:
                        rcpt.append(line[8:].strip(b"<>").decode())
                        replies.append(b"250 OK")
                elif verb == b"DATA":
                    if rcpt:
                        replies.append(b"354 go ahead")
                        in_data = True
                    else:
                        replies.append(b"554 5.5.1 No valid recipients")
                elif verb == b"RSET":
                    rcpt, rcpt_refused = [], False
                    replies.append(b"250 OK")
                elif verb == b"QUIT":
                    writer.write(
                        b"".join(r + b"\r\n" for r in replies) + b"221 bye\r\n"
                    )
                    await writer.drain()
                    return
                else:
                    replies.append(b"250 OK")
            if replies:
                writer.write(b"".join(r + b"\r\n" for r in replies))
                await writer.drain()
