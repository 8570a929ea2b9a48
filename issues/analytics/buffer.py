"""The tracking hits' buffer: an append per hit, drained in bulk by the flush.

With Redis (ANALYTICS_BUFFER_URL, by default the cache's Redis), a hit is one
RPUSH; the flush moves a block to a list of its own (LMOVE, one at a time, atomic)
and deletes it only after the block is stored, so a flush that dies leaves it to
the next one. In the embedded default a hit is one ``write()`` to an append-only
file under VAR_DIR, with O_APPEND (the kernel places each write whole at the end)
under a shared lock; the flush renames the file, waits for writers still holding
the old one (an exclusive lock) and reads it. A writer that opened the old name
just before the rename notices, under its lock, that the name points elsewhere and
writes again to the new file. A database table would put every pixel behind
SQLite's one writer, the sending workers included; a file append costs
microseconds and never waits on the database.

Hits are stored at least once: each carries its own id and the flush inserts events
with that id once, so replaying a block changes nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Protocol

from django.conf import settings

KEY = "quire:analytics:hits"
PROCESSING = "quire:analytics:processing"


class Buffer(Protocol):
    def append(self, hit: dict) -> None: ...

    def drain(self, limit: int) -> Iterator[list[dict]]: ...


class RedisBuffer:
    def __init__(self, url: str) -> None:
        import redis  # only where Redis is configured

        self.client = redis.Redis.from_url(url)

    def append(self, hit: dict) -> None:
        self.client.rpush(KEY, json.dumps(hit, separators=(",", ":")))

    def pending(self) -> int:
        return int(self.client.llen(KEY)) + int(self.client.llen(PROCESSING))

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
        return RedisBuffer(url)
    return FileBuffer(Path(folder))


def get_buffer() -> Buffer:
    """Return the configured buffer (one per process and configuration)."""
    return _buffer(settings.ANALYTICS_BUFFER_URL, str(settings.ANALYTICS_BUFFER_DIR))
