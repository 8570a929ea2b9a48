"""A small in-process cache of issue pages that are the same for every reader.

Only pages for anonymous readers (no session, no pending messages, no paid access)
are cached; the CSRF token, the one per-reader part, is put in on every response.

Each server process keeps its own few entries, keyed by slug. An entry is served
without touching the database for QUIRE_PAGE_RECHECK_SECONDS (default 2) after the
database last confirmed that the issue is still public and unchanged; after that
one small query re-checks it, and any change re-renders the page. An issue saved
or deleted clears this process's entries at once; other processes notice within
the recheck interval. Entries are dropped after QUIRE_PAGE_CACHE_SECONDS (0 turns
the cache off) so that changes elsewhere (the publication's name, a template)
show within that time.

Each entry is also kept gzip-compressed, once, for browsers that accept it: the
compressed pieces around the token are independent deflate segments ending on a
byte boundary, so the token goes between them as a stored block and only the CRC
of the bytes after the first token is computed per response.
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpRequest

CSRF_PLACEHOLDER = "quire-csrf-token-placeholder"
MAX_ENTRIES = 64
# A gzip header (no name, no time, unknown OS) and the final empty deflate block.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
DEFLATE_END = b"\x03\x00"


def _deflate_segment(data: bytes) -> bytes:
    """Compress data as non-final deflate blocks that end on a byte boundary."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _stored_block(data: bytes) -> bytes:
    """Return data as one non-final stored (uncompressed) deflate block."""
    return b"\x00" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data


def cache_seconds() -> int:
    return int(getattr(settings, "QUIRE_PAGE_CACHE_SECONDS", 120))


def recheck_seconds() -> float:
    return float(getattr(settings, "QUIRE_PAGE_RECHECK_SECONDS", 2))


def is_shared_request(request: HttpRequest, *, paid_access: bool) -> bool:
    """Return whether this reader gets the page everyone without an account gets."""
    cookies = request.COOKIES
    return (
        not paid_access
        and settings.SESSION_COOKIE_NAME not in cookies
        and "messages" not in cookies
        and not request.user.is_authenticated
    )


@dataclass
class Page:
    # The page encoded once, cut where each reader's CSRF token goes.
    parts: list[bytes]
    etag: str
    last_modified: float
    version: str  # the last change, as the database said
    expires: float
    checked: float  # when the database last confirmed version and visibility

    # The same, deflated once; the CRC of everything before the first token.
    deflated: list[bytes] = field(default_factory=list)
    crc_before_token: int = 0

    def confirmed_recently(self, now: float) -> bool:
        return now - self.checked < recheck_seconds()

    @classmethod
    def cut(cls, html: str, **fields) -> Page:
        parts = [part.encode() for part in html.split(CSRF_PLACEHOLDER)]
        return cls(
            parts=parts,
            deflated=[_deflate_segment(part) for part in parts],
            crc_before_token=zlib.crc32(parts[0]),
            **fields,
        )

    def content(self, csrf_token: str) -> bytes:
        """Return the page with this reader's CSRF token in place."""
        return csrf_token.encode().join(self.parts)

    def gzipped(self, csrf_token: str) -> bytes:
        """Return content(csrf_token) as a gzip stream, compressed once per entry."""
        token = csrf_token.encode()
        pieces = [GZIP_HEADER, self.deflated[0]]
        crc = self.crc_before_token
        for part, deflated in zip(self.parts[1:], self.deflated[1:], strict=True):
            pieces += [_stored_block(token), deflated]
            crc = zlib.crc32(part, zlib.crc32(token, crc))
        size = sum(map(len, self.parts)) + len(token) * (len(self.parts) - 1)
        pieces += [DEFLATE_END, struct.pack("<II", crc, size & 0xFFFFFFFF)]
        return b"".join(pieces)


class PageCache:
    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Page] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Page | None:
        now = time.monotonic()
        with self._lock:
            page = self._entries.get(key)
            if page is None:
                return None
            if page.expires < now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return page

    def put(self, key: str, page: Page) -> None:
        with self._lock:
            self._entries[key] = page
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


pages = PageCache()
