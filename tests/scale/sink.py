"""An SMTP sink that counts what it accepted: per recipient and per sending host.

    python -m tests.scale.sink ADDRESS PORT DELAY_MS OUT_FILE

It answers every command DELAY_MS milliseconds after it arrived (a relay a little
way off; pipelined commands are answered in order, each after the delay) and offers
PIPELINING. A message counts as received once its data has arrived in full, whether
or not the sender ever sees the "250" (that is what makes a duplicate when the
sender is cut off just then). Two extra commands:

- ``STAT``: ``250 {"peer address": messages, ...}``, the messages each host sent;
- ``DUMP``: writes ``{"recipient": [peer address of each copy], ...}`` as JSON to
  OUT_FILE.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections import Counter
from pathlib import Path

EHLO_REPLY = b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 0\r\n"
RCPT = re.compile(rb"^RCPT TO:\s*<([^>]*)>", re.IGNORECASE)


class Sink:
    def __init__(self, delay: float, out: Path) -> None:
        self.delay = delay
        self.out = out
        self.recipients: dict[str, list[str]] = {}
        self.peers: Counter[str] = Counter()

    def reply(self, verb: bytes) -> bytes:
        if verb in (b"EHLO", b"HELO"):
            return EHLO_REPLY
        if verb == b"QUIT":
            return b"221 bye\r\n"
        if verb == b"STAT":
            return f"250 {json.dumps(dict(self.peers))}\r\n".encode()
        if verb == b"DUMP":
            self.out.write_text(json.dumps(self.recipients))
            return b"250 written\r\n"
        return b"250 OK\r\n"  # MAIL, RCPT, RSET, NOOP

    async def session(self, reader, writer) -> None:
        peer = writer.get_extra_info("peername")[0]
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue = asyncio.Queue()
        sender = asyncio.create_task(self._write(writer, replies))
        replies.put_nowait((loop.time() + self.delay, b"220 sink ESMTP\r\n"))
        envelope: list[str] = []
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"DATA":
                    replies.put_nowait((loop.time() + self.delay, b"354 go ahead\r\n"))
                    await reader.readuntil(b"\r\n.\r\n")
                    for rcpt in envelope:
                        self.recipients.setdefault(rcpt, []).append(peer)
                    self.peers[peer] += 1
                    envelope = []
                    replies.put_nowait((loop.time() + self.delay, b"250 OK queued\r\n"))
                    continue
                if verb in (b"MAIL", b"RSET"):
                    envelope = []
                elif match := RCPT.match(line):
                    envelope.append(match.group(1).decode())
                replies.put_nowait((loop.time() + self.delay, self.reply(verb)))
                if verb == b"QUIT":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        replies.put_nowait((0.0, None))
        await sender

    async def _write(self, writer, replies: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, reply = await replies.get()
                if reply is None:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(reply)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()


async def main(address: str, port: int, delay_ms: float, out: Path) -> None:
    sink = Sink(delay_ms / 1000, out)
    server = await asyncio.start_server(sink.session, address, port, limit=1 << 22)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    host, port, delay, out = sys.argv[1:5]
    asyncio.run(main(host, int(port), float(delay), Path(out)))
