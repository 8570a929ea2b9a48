"""A shared pace per API: one request every N seconds across every process.

arXiv asks for no more than one request every three seconds from a client, and
Crossref's polite pool for a few a second; both count requests from the whole
installation, so the next free moment lives in Django's cache (Redis in the services
setup, files under var/ in the embedded default), not in a process. Taking a turn
reserves the next free moment under a short lock and sleeps until it comes; when an
API answered "slow down" (arXiv's 503 with Retry-After, Crossref's 429) no turn is
given before the time it asked for.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache

from .errors import ApiBusy, seconds

# How long a turn's lock may be held before it counts as abandoned (a process that
# died between taking and releasing it).
LOCK_SECONDS = 5


def api_key(name: str, base_url: str) -> str:
    """Return the cache key prefix of one API at one address."""
    # The address is part of the key: tests' local servers, each on its own port,
    # never share a pace or an answer with another server.
    digest = hashlib.sha256(base_url.encode()).hexdigest()[:16]
    return f"quire:paper-api:{name}:{digest}"


class Pace:
    """The pace of one API: at most one request per interval, shared by processes."""

    def __init__(
        self,
        name: str,
        *,
        label: str,
        base_url: str,
        interval: float,
        max_wait: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.label = label  # "arXiv", "Crossref": for messages
        self.key = api_key(name, base_url)
        self.interval = interval
        self.max_wait = max_wait
        # Wall-clock time, the same in every process; a test passes its own.
        self.clock = clock
        self.sleep = sleep

    def take_turn(self) -> float:
        """Wait for this process's turn to call the API; return the seconds waited.

        Raises ApiBusy, reserving nothing, when the turn is further away than
        max_wait (the API asked us to hold off, or others are queued before us).
        """
        with self._locked():
            now = self.clock()
            held_until = cache.get(f"{self.key}:held") or 0.0
            at = max(now, cache.get(f"{self.key}:next") or 0.0, held_until)
            wait = at - now
            if wait > self.max_wait:
                if held_until >= at:
                    raise ApiBusy(
                        f"{self.label} asks us to slow down, try again in "
                        f"{seconds(wait)} s.",
                        wait=wait,
                    )
                raise ApiBusy(
                    f"{self.label} is busy with other requests from this site, try "
                    f"again in {seconds(wait)} s.",
                    wait=wait,
                )
            cache.set(f"{self.key}:next", at + self.interval, timeout=self._ttl(wait))
        if wait > 0:
            self.sleep(wait)
        return wait

    def hold_off(self, wait: float) -> None:
        """Give no turn for wait seconds: the API asked us to slow down."""
        with self._locked():
            until = self.clock() + wait
            if until > (cache.get(f"{self.key}:held") or 0.0):
                cache.set(f"{self.key}:held", until, timeout=self._ttl(wait))

    def held_for(self) -> float:
        """Return how many seconds the API asked us to wait still (0 when none)."""
        return max(0.0, (cache.get(f"{self.key}:held") or 0.0) - self.clock())

    def _ttl(self, wait: float) -> int:
        return int(wait + self.interval) + 60

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # The backend itself: `cache` is a proxy, never an instance of one.
        if isinstance(caches[DEFAULT_CACHE_ALIAS], RedisCache):
            yield from _redis_lock(f"{self.key}:lock")
        else:
            yield from _file_lock(self.name)


def _redis_lock(key: str) -> Iterator[None]:
    # cache.add is SET NX on Redis: one holder at a time, across every host.
    deadline = time.monotonic() + LOCK_SECONDS
    while not cache.add(key, 1, timeout=LOCK_SECONDS):
        if time.monotonic() > deadline:
            break  # abandoned by a dead process: its expiry is near anyway
        time.sleep(0.01)
    try:
        yield
    finally:
        cache.delete(key)


def _file_lock(name: str) -> Iterator[None]:
    # The embedded default's cache is files, whose add() is not atomic between
    # processes; every process of it runs on this machine, so a file lock holds.
    folder = Path(settings.VAR_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"paper-api-{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
