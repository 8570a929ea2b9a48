"""The outgoing message rate: a limit in messages per second shared by every worker.

Not the throttle on subscribe and sign-in requests (subscribers.throttling).

With Redis as the broker the count lives in Redis (all workers on all machines see
it); in the embedded default (one machine) it lives in a locked file under var/.
Time is cut into windows of one second (longer for rates under one a second) that
every worker shares. A worker does not ask the shared count for each message: one
round trip (one INCRBY, or one lock of the file) takes a block of slots, a tenth of
the window's capacity or what is left of it, and the worker hands them out locally
until the block is spent. The shared count never grants more than the capacity in a
window, so the limit holds across all workers; a block belongs to its window, and
what is left of it when the window ends is dropped, never spent in the next. A
window may therefore go out a little under the limit (at most a block less one per
worker), never over it.

One limiter serves one process: `acquire()` blocks (the task thread), `take()` never
does, and `acquire_async()` awaits in an event loop, shared by its coroutines. The
local block is guarded by a lock, so a task thread and an event-loop thread may use
the same limiter.
"""

from __future__ import annotations

import asyncio
import fcntl
import math
import threading
import time
from collections.abc import Awaitable, Callable
from functools import cache

import redis
from django.conf import settings

# A block is this fraction of a window's capacity: ten round trips a window at most
# per worker, and at most a tenth of the capacity left unspent per worker.
BLOCKS_PER_WINDOW = 10


class RateLimiter:
    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_second = per_second
        # The windows are wall-clock seconds shared by every worker; a test passes
        # its own clock and sleeps.
        self.clock = clock
        self.sleep = sleep
        self.async_sleep = async_sleep
        # Windows of one second for rates >= 1/s, longer windows for slower rates.
        self.window = max(1.0, 1.0 / per_second) if per_second > 0 else 1.0
        self.capacity = max(1, math.floor(per_second * self.window))
        self.block = max(1, math.ceil(self.capacity / BLOCKS_PER_WINDOW))
        # The local block: the window it was granted in and the slots left of it.
        self._lock = threading.Lock()
        self._slot: int | None = None
        self._left = 0
        # The shared count said this window is full: no more round trips until the
        # next one.
        self._full = False

    def take(self, wanted: int = 1) -> tuple[int, float]:
        """Take up to wanted slots now; return them and, if none, seconds to wait."""
        if self.per_second <= 0:
            return wanted, 0.0
        if wanted <= 0:
            return 0, 0.0
        with self._lock:
            while True:
                now = self.clock()
                slot = int(now // self.window)
                if slot != self._slot:
                    self._slot, self._left, self._full = slot, 0, False
                if self._left >= wanted or self._full:
                    break
                ask = min(self.capacity, max(self.block, wanted - self._left))
                granted = self._grant(slot, ask)
                if int(self.clock() // self.window) != slot:
                    # The window ended during the round trip: its slots are past.
                    continue
                self._left += granted
                self._full = granted < ask
                break
            given = min(wanted, self._left)
            self._left -= given
            if given:
                return given, 0.0
            return 0, max(0.001, (slot + 1) * self.window - now)

    def acquire(self) -> None:
        """Block until one more message may go out."""
        while True:
            given, wait = self.take(1)
            if given:
                return
            self.sleep(wait)

    async def acquire_async(self) -> None:
        """Wait, without blocking the event loop, until one more message may go out."""
        while True:
            given, wait = self.take(1)
            if given:
                return
            await self.async_sleep(wait)

    def _grant(self, slot: int, wanted: int) -> int:
        """Take up to wanted slots of the window from the shared count."""
        raise NotImplementedError


class RedisRateLimiter(RateLimiter):
    def __init__(
        self,
        per_second: float,
        url: str,
        *,
        prefix: str = "quire:sending:rate",
        **clock,
    ) -> None:
        super().__init__(per_second, **clock)
        self.client = redis.Redis.from_url(url)
        self.prefix = prefix

    def _grant(self, slot: int, wanted: int) -> int:
        key = f"{self.prefix}:{slot}"
        pipe = self.client.pipeline()
        pipe.incrby(key, wanted)
        pipe.expire(key, int(self.window) + 5)
        count, _ = pipe.execute()
        # What was left before this block; the surplus past the capacity stays in
        # the count, where it only tells later callers the window is full.
        before = count - wanted
        return max(0, min(wanted, self.capacity - before))


class FileRateLimiter(RateLimiter):
    def __init__(self, per_second: float, path, **clock) -> None:
        super().__init__(per_second, **clock)
        self.path = path

    def _grant(self, slot: int, wanted: int) -> int:
        with open(self.path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            current_slot, _, count = handle.read().partition(" ")
            used = int(count) if current_slot == str(slot) and count else 0
            granted = max(0, min(wanted, self.capacity - used))
            if granted:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{slot} {used + granted}")
            return granted


@cache
def _limiter(per_second: float, broker: str, var_dir: str) -> RateLimiter:
    if broker.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(per_second, broker)
    return FileRateLimiter(per_second, f"{var_dir}/sending-rate")


def get_rate_limiter() -> RateLimiter:
    """Return this process's limiter for SENDING_RATE_LIMIT (a no-op when it is 0)."""
    return _limiter(
        float(settings.SENDING_RATE_LIMIT),
        settings.CELERY_BROKER_URL,
        str(settings.VAR_DIR),
    )
