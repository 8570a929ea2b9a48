"""The outgoing message rate: a limit in messages per second shared by every worker.

Not the throttle on subscribe and sign-in requests (subscribers.throttling).

With Redis as the broker the count lives in Redis (all workers on all machines see
it); in the embedded default (one machine) it lives in a locked file under var/.
Each call takes one slot in the current one-second window and sleeps into the next
window when this one is full.
"""

from __future__ import annotations

import fcntl
import math
import time
from collections.abc import Callable
from functools import cache

import redis
from django.conf import settings


class RateLimiter:
    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        # The windows are wall-clock seconds shared by every worker; a test passes
        # its own clock.
        self.clock = clock
        self.sleep = sleep

    def acquire(self) -> None:
        """Block until one more message may go out."""
        if self.per_second <= 0:
            return
        # Windows of one second for rates >= 1/s, longer windows for slower rates.
        window = max(1.0, 1.0 / self.per_second)
        capacity = max(1, math.floor(self.per_second * window))
        while True:
            now = self.clock()
            slot = int(now // window)
            if self._take(slot, capacity, window):
                return
            self.sleep(max(0.001, (slot + 1) * window - now))

    def _take(self, slot: int, capacity: int, window: float) -> bool:
        raise NotImplementedError


class RedisRateLimiter(RateLimiter):
    def __init__(self, per_second: float, url: str, **clock) -> None:
        super().__init__(per_second, **clock)
        self.client = redis.Redis.from_url(url)

    def _take(self, slot: int, capacity: int, window: float) -> bool:
        key = f"quire:sending:rate:{slot}"
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.expire(key, int(window) + 5)
        count, _ = pipe.execute()
        return count <= capacity


class FileRateLimiter(RateLimiter):
    def __init__(self, per_second: float, path, **clock) -> None:
        super().__init__(per_second, **clock)
        self.path = path

    def _take(self, slot: int, capacity: int, window: float) -> bool:
        with open(self.path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            current_slot, _, count = handle.read().partition(" ")
            used = int(count) if current_slot == str(slot) and count else 0
            if used >= capacity:
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(f"{slot} {used + 1}")
            return True


@cache
def _limiter(per_second: float, broker: str, var_dir: str) -> RateLimiter:
    if broker.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(per_second, broker)
    return FileRateLimiter(per_second, f"{var_dir}/sending-rate")


def get_rate_limiter() -> RateLimiter:
    """Return the limiter for SENDING_RATE_LIMIT (a no-op when it is 0)."""
    return _limiter(
        float(settings.SENDING_RATE_LIMIT),
        settings.CELERY_BROKER_URL,
        str(settings.VAR_DIR),
    )
