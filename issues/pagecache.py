"""Reader pages kept rendered in each server process, the same for every reader.

Only pages for anonymous readers (no session, no pending messages) are kept: see
issues/shared_pages.py for which pages, and for the headers they go out with. A
page is stored cut where each reader's CSRF token goes, and is valid for one
content version (issues/content_version.py): any change readers could see makes
every process drop all its pages at once, within QUIRE_PAGE_RECHECK_SECONDS.
Entries are also dropped after QUIRE_PAGE_CACHE_SECONDS (0 turns the cache off),
so that what no version covers (a template after a deploy) shows within that time.

Each store is bounded twice: by entries and by bytes (QUIRE_PAGE_CACHE_MAX_BYTES,
per process; the least recently used page goes first).

Each entry is also kept gzip-compressed, once, for browsers that accept it: the
compressed pieces around the token are independent deflate segments ending on a
byte boundary, so the token goes between them as a stored block and only the CRC
of the bytes after the first token is computed per response.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpRequest

CSRF_PLACEHOLDER = "quire-csrf-token-placeholder"
MAX_ENTRIES = 1024
SEARCH_MAX_ENTRIES = 256
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


def search_seconds() -> int:
    return int(getattr(settings, "QUIRE_SEARCH_CACHE_SECONDS", 30))


def max_bytes() -> int:
    return int(getattr(settings, "QUIRE_PAGE_CACHE_MAX_BYTES", 64 * 1024 * 1024))


def is_shared_request(request: HttpRequest, *, paid_access: bool = False) -> bool:
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
    version: str  # the content version it was rendered at
    expires: float  # time.monotonic() after which it is not served
    # Headers of the view's response that go out again with every copy.
    headers: dict[str, str] = field(default_factory=dict)

    # The same, deflated once; the CRC of everything before the first token.
    deflated: list[bytes] = field(default_factory=list)
    crc_before_token: int = 0
    # The page without any token, as the same bytes for every reader.
    tokenless: bytes = b""
    tokenless_gzipped: bytes = b""

    @property
    def needs_token(self) -> bool:
        return len(self.parts) > 1

    @property
    def size(self) -> int:
        return (
            2 * sum(map(len, self.parts))
            + sum(map(len, self.deflated))
            + len(self.tokenless_gzipped)
        )

    @classmethod
    def cut(cls, content: bytes | str, *, version: str, expires: float,
            headers: dict[str, str] | None = None) -> Page:  # fmt: skip
        """Return the rendered content (with CSRF placeholders) ready to serve."""
        if isinstance(content, str):
            content = content.encode()
        parts = content.split(CSRF_PLACEHOLDER.encode())
        digest = hashlib.blake2b(version.encode(), digest_size=12)
        for part in parts:
            digest.update(part)
        page = cls(
            parts=parts,
            # Weak: the same page goes out gzip-compressed or not, with one
            # reader's token or another's.
            etag='W/"' + digest.hexdigest() + '"',
            version=version,
            expires=expires,
            headers=headers or {},
            deflated=[_deflate_segment(part) for part in parts],
            crc_before_token=zlib.crc32(parts[0]),
        )
        page.tokenless = page.content("")
        page.tokenless_gzipped = page.gzipped("")
        return page

    def content(self, csrf_token: str) -> bytes:
        """Return the page with this reader's CSRF token in place."""
        if not csrf_token and self.tokenless:
            return self.tokenless
        return csrf_token.encode().join(self.parts)

    def gzipped(self, csrf_token: str) -> bytes:
        """Return content(csrf_token) as a gzip stream, compressed once per entry."""
        if not csrf_token and self.tokenless_gzipped:
            return self.tokenless_gzipped
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
    """Pages by key, the least recently used dropped first past either bound."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int | None = None):
        self.max_entries = max_entries
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, Page] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        return self._max_bytes if self._max_bytes is not None else max_bytes()

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, *, version: str | None = None) -> Page | None:
        """Return the page stored under key, if it is still valid (for version)."""
        now = time.monotonic()
        with self._lock:
            page = self._entries.get(key)
            if page is None:
                return None
            if page.expires < now or (version is not None and page.version != version):
                self._pop(key)
                return None
            self._entries.move_to_end(key)
            return page

    def put(self, key: str, page: Page) -> None:
        limit = self.max_bytes
        if page.size > limit:
            return
        with self._lock:
            self._pop(key)
            self._entries[key] = page
            self._bytes += page.size
            while len(self._entries) > self.max_entries or self._bytes > limit:
                self._pop(next(iter(self._entries)))

    def discard(self, key: str) -> None:
        with self._lock:
            self._pop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _pop(self, key: str) -> None:
        page = self._entries.pop(key, None)
        if page is not None:
            self._bytes -= page.size


pages = PageCache()
# Search results have a store of their own: queries are the reader's to choose,
# and must not push the site's pages out.
search_pages = PageCache(SEARCH_MAX_ENTRIES)
