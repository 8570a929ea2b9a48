"""The tracking hits' buffer: an append per hit, drained in bulk by the flush.

In the embedded default a hit is one ``write()`` to an append-only file under
VAR_DIR, with O_APPEND (the kernel places each write whole at the end) under a
shared lock; the flush renames the file, waits for writers still holding the old
one (an exclusive lock) and reads it. A writer that opened the old name just before
the rename notices, under its lock, that the name points elsewhere and writes again
to the new file. A database table would put every pixel behind SQLite's one writer,
the sending workers included; a file append costs microseconds and never waits on
the database.

With Redis (ANALYTICS_BUFFER_URL, by default the cache's Redis), so that the flush
on a worker host sees the hits of every web host, a hit is still that file append
on its own host, and each process forwards its host's file to a Redis list in
blocks (one RPUSH of many hits), twice a second. A round trip to Redis per hit cost
the pixel a third of its rate on a busy server, and a Redis restart would have
failed it. The flush moves a block to a list of its own (LMOVE, one at a time,
atomic) and deletes it only after the block is stored, so a flush that dies leaves
it to the next one.

Hits are stored at least once: each carries its own id and the flush inserts events
with that id once, so replaying a block changes nothing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

KEY = "quire:analytics:hits"
PROCESSING = "quire:analytics:processing"
# How often each process moves its host's spooled hits into Redis.
FORWARD_SECONDS = 0.5


class Buffer(Protocol):
    def append(self, hit: dict) -> None: ...

    def drain(self, limit: int) -> Iterator[list[dict]]: ...


class RedisBuffer:
    """Hits spooled to this host's file, forwarded to Redis in blocks.

    A pixel's append is the file buffer's (a write, no network), so a slow or
    restarting Redis never slows or fails a request; each process forwards its
    host's spool to the list every FORWARD_SECONDS, a block of hits per round trip,
    and the flush forwards what is left first. What is spooled stays on disk until
    Redis took it, so a process that dies loses nothing: the next one forwards it.
    """

    def __init__(self, url: str, folder: Path) -> None:
        import redis  # only where Redis is configured

        self.client = redis.Redis.from_url(url)
        self.spool = FileBuffer(folder)
        self._forwarder: tuple[int, threading.Thread] | None = None
        self._start_lock = threading.Lock()

    def append(self, hit: dict) -> None:
        self.spool.append(hit)
        forwarder = self._forwarder
        if forwarder is None or forwarder[0] != os.getpid():
            self._start_forwarding()

    def _start_forwarding(self) -> None:
        with self._start_lock:
            forwarder = self._forwarder
            if forwarder is not None and forwarder[0] == os.getpid():
                return  # another thread started it
            thread = threading.Thread(
                target=self._forward_forever, name="quire-hits", daemon=True
            )
            # A forked server has no thread of its parent's: it starts its own.
            self._forwarder = (os.getpid(), thread)
            thread.start()

    def _forward_forever(self) -> None:
        while True:
            time.sleep(FORWARD_SECONDS)
            try:
                self.forward()
            except Exception:  # noqa: BLE001 - the spool keeps them; next round
                logger.warning(
                    "Could not forward tracking hits to Redis", exc_info=True
                )

    def forward(self, *, wait: bool = False, limit: int = 1000) -> int:
        """Move this host's spooled hits into the list; return how many.

        One process at a time per host (a lock file): without wait, a round is
        skipped while another process forwards; the flush waits for it.
        A failure leaves the spool's file for the next round; the blocks pushed
        before it go again then, and the hits' ids make the flush store them once.
        """
        moved = 0
        with self.spool.exclusive(wait=wait) as mine:
            if not mine:
                return 0
            for block in self.spool.drain(limit):
                lines = [json.dumps(hit, separators=(",", ":")) for hit in block]
                self.client.rpush(KEY, *lines)
                moved += len(block)
        return moved

    def pending(self) -> int:
        waiting = int(self.client.llen(KEY)) + int(self.client.llen(PROCESSING))
        return self.spool.pending() + waiting

    @contextmanager
    def _block(self, limit: int) -> Iterator[list[dict]]:
        # What a dead flush left in PROCESSING goes first.
        raw = self.client.lrange(PROCESSING, 0, -1)
        if not raw:
            pipe = self.client.pipeline()
            for _ in range(limit):
                pipe.lmove(KEY, PROCESSING, "LEFT", "RIGHT")
            raw = [item for item in pipe.execute() if item is not None]
        yield [json.loads(item) for item in raw]
        self.client.delete(PROCESSING)

    def drain(self, limit: int) -> Iterator[list[dict]]:
        self.forward(wait=True)  # what this host spooled that is not moved yet
        while True:
            with self._block(limit) as hits:
                if not hits:
                    return
                yield hits


class FileBuffer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "hits.jsonl"
        folder.mkdir(parents=True, exist_ok=True)

    def append(self, hit: dict) -> None:
        line = (json.dumps(hit, separators=(",", ":")) + "\n").encode()
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                try:
                    current = os.stat(self.path).st_ino
                except FileNotFoundError:
                    current = -1
                if current == os.fstat(fd).st_ino:
                    os.write(fd, line)
                    return
            finally:
                os.close(fd)  # and with it the lock

    @contextmanager
    def exclusive(self, *, wait: bool) -> Iterator[bool]:
        """Hold the folder's drain lock; without wait, yield False if it is taken."""
        try:
            fd = os.open(self.folder / ".drain.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        except FileNotFoundError:  # the folder went (a test's): nothing to drain
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # and with it the lock

    def pending(self) -> int:
        count = 0
        for path in self.folder.glob("hits*.jsonl"):
            with open(path, "rb") as handle:
                count += sum(1 for _ in handle)
        return count

    def drain(self, limit: int) -> Iterator[list[dict]]:
        # A file left by a flush that died is read before the current one.
        leftovers = sorted(self.folder.glob("hits.*.jsonl"))
        if not leftovers and self.path.exists():
            taken = self.folder / f"hits.{os.getpid()}.{os.urandom(4).hex()}.jsonl"
            os.rename(self.path, taken)
            leftovers = [taken]
        for path in leftovers:
            with open(path, "rb") as handle:
                # Writers that opened the old name finish before this goes on.
                fcntl.flock(handle, fcntl.LOCK_EX)
                block: list[dict] = []
                for line in handle:
                    if not line.endswith(b"\n"):
                        continue  # never a whole hit: a writer was killed mid-way
                    block.append(json.loads(line))
                    if len(block) >= limit:
                        yield block
                        block = []
                if block:
                    yield block
            path.unlink()


@cache
def _buffer(url: str, folder: str) -> Buffer:
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBuffer(url, Path(folder))
    return FileBuffer(Path(folder))


def get_buffer() -> Buffer:
    """Return the configured buffer (one per process and configuration)."""
    return _buffer(settings.ANALYTICS_BUFFER_URL, str(settings.ANALYTICS_BUFFER_DIR))
