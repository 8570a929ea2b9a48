"""SENDING_RATE_LIMIT: slots taken from the shared count in blocks.

Each test runs on the file limiter (the embedded default) and, in CI's services leg,
on Redis (the broker's database; elsewhere the Redis cases are deselected by
tests/sending/conftest.py, never skipped). Time is a fake clock that moves only when
a limiter sleeps, so a window's count is exact.
"""

from __future__ import annotations

import asyncio
import fcntl
import random
import threading
import uuid
from collections import Counter
from contextlib import contextmanager

import pytest
import redis

from issues.sending.send_rate import FileRateLimiter, RateLimiter, RedisRateLimiter

# A fake epoch: any whole second will do, the Redis keys are this test's own.
START = 1_900_000_000.0


class FakeClock:
    """Time that passes only when a limiter sleeps."""

    def __init__(self, start: float = START) -> None:
        self.start = self.now = start

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        # Coroutines sleeping side by side wake at their own deadlines, not one
        # after another: time moves to the latest deadline reached.
        wake = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, wake)

    def second(self) -> int:
        return int(self.now - self.start)


class SharedCount:
    """Where separate worker processes keep their one count, and their limiters."""

    def __init__(self, kind: str, tmp_path, url: str = "") -> None:
        self.kind = kind
        self.url = url
        self.path = tmp_path / "sending-rate"
        self.prefix = f"quire:test:rate:{uuid.uuid4().hex}"

    def limiter(self, per_second: float, clock: FakeClock, **sleeps) -> RateLimiter:
        """Return a new worker's limiter on this count and this clock."""
        timing = {
            "clock": clock.time,
            "sleep": clock.sleep,
            "async_sleep": clock.async_sleep,
            **sleeps,
        }
        if self.kind == "redis":
            return RedisRateLimiter(per_second, self.url, prefix=self.prefix, **timing)
        return FileRateLimiter(per_second, self.path, **timing)


def redis_count(settings, tmp_path) -> SharedCount:
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "this test needs Redis"
    return SharedCount("redis", tmp_path, settings.CELERY_BROKER_URL)


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.services)])
def shared(request, settings, tmp_path) -> SharedCount:
    """The file limiter, and in the services leg Redis as well."""
    if request.param == "redis":
        return redis_count(settings, tmp_path)
    return SharedCount("file", tmp_path)


@pytest.fixture
def shared_redis(settings, tmp_path) -> SharedCount:
    return redis_count(settings, tmp_path)


@pytest.fixture
def shared_file(tmp_path) -> SharedCount:
    return SharedCount("file", tmp_path)


def test_workers_sharing_the_count_never_exceed_the_limit_in_any_window(shared):
    clock = FakeClock()
    workers = [shared.limiter(50, clock) for _ in range(4)]
    assert workers[0].block == 5
    order = random.Random(7)
    sent = Counter()
    remaining = 1000
    while remaining:
        worker = order.choice(workers)
        # Some callers want several slots at once (the sessions of one loop).
        wanted = min(remaining, order.choice([1, 1, 2, 3, 7]))
        given, wait = worker.take(wanted)
        if given:
            sent[clock.second()] += given
            remaining -= given
        else:
            assert wait > 0
            clock.sleep(wait)

    assert sum(sent.values()) == 1000
    assert max(sent.values()) <= 50
    # Blocks left over when a window ends cost at most a block less one per worker.
    last = max(sent)
    assert all(sent[second] >= 50 - 4 * (5 - 1) for second in range(last))


def test_a_block_left_over_is_not_spent_in_the_next_window(shared):
    clock = FakeClock()
    early, others = shared.limiter(50, clock), shared.limiter(50, clock)
    assert early.take(1) == (1, 0.0)  # and 4 more of its block, in this window
    clock.sleep(1.0)
    taken = 0
    while (given := others.take(50 - taken)[0]) > 0:
        taken += given
    assert taken == 50
    # The next window is full: the block of the first one is gone with its window.
    given, wait = early.take(1)
    assert given == 0
    assert wait == pytest.approx(1.0)


@contextmanager
def redis_commands(url: str, prefix: str):
    """Collect the commands Redis itself sees on keys under prefix (MONITOR)."""
    client = redis.Redis.from_url(url)
    seen: list[str] = []
    ready = threading.Event()
    done = f"{prefix}:done"

    def watch():
        with client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if done in command["command"]:
                    return
                if prefix in command["command"]:
                    seen.append(command["command"].split()[0].upper())

    watcher = threading.Thread(target=watch)
    watcher.start()
    ready.wait()
    try:
        yield seen
    finally:
        client.get(done)
        watcher.join()


@pytest.mark.services
def test_workers_ask_redis_once_a_block_not_once_a_message(shared_redis):
    clock = FakeClock()
    workers = [shared_redis.limiter(200, clock) for _ in range(3)]
    block = workers[0].block
    assert block == 20
    order = random.Random(11)
    sent = Counter()
    with redis_commands(shared_redis.url, shared_redis.prefix) as seen:
        for _ in range(1200):
            order.choice(workers).acquire()
            sent[clock.second()] += 1
    asks = seen.count("INCRBY") + seen.count("INCR")
    assert max(sent.values()) <= 200
    # A round trip for each block, and at most one more per worker and window
    # that finds the window full; before blocks, it was 1,200.
    assert 1200 / block <= asks <= 1200 / block + len(workers) * len(sent)


def test_the_file_is_locked_and_written_once_a_block_not_once_a_message(
    shared_file,
):
    clock = FakeClock()
    workers = [shared_file.limiter(200, clock) for _ in range(3)]
    block = workers[0].block
    order = random.Random(11)
    writes = 0
    content = ""
    sent = Counter()
    for _ in range(1200):
        order.choice(workers).acquire()
        sent[clock.second()] += 1
        # Each lock of the file writes the window and its count; none else does.
        if (now := shared_file.path.read_text()) != content:
            writes, content = writes + 1, now
    assert max(sent.values()) <= 200
    # Failed asks write nothing; before blocks it was a lock and a write a message.
    assert 1200 / block <= writes <= 1200 / block + len(workers) * len(sent)


def test_the_rest_of_a_block_goes_out_while_another_worker_holds_the_file(
    shared_file,
):
    clock = FakeClock()
    limiter = shared_file.limiter(50, clock)
    limiter.acquire()
    given = []
    # Another worker locks the file (flock is held per open file, even here).
    with open(shared_file.path, "a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        sender = threading.Thread(
            target=lambda: given.extend(limiter.take(1)[0] for _ in range(4))
        )
        sender.start()
        # A deadlock guard, not a measure: locking per message would wait here.
        sender.join(timeout=10)
        waited_for_the_lock = sender.is_alive()
        fcntl.flock(other, fcntl.LOCK_UN)
    sender.join()
    assert not waited_for_the_lock
    assert given == [1, 1, 1, 1]


def test_coroutines_of_one_loop_share_the_block_and_keep_to_the_limit(shared):
    clock = FakeClock()

    def blocking(seconds):
        raise AssertionError("acquire_async slept the event loop's thread")

    workers = [shared.limiter(100, clock, sleep=blocking) for _ in range(2)]
    sent = Counter()

    async def session(limiter: RateLimiter) -> None:
        for _ in range(15):
            await limiter.acquire_async()
            sent[clock.second()] += 1
            await asyncio.sleep(0)

    async def main() -> None:
        # Two workers' loops of 20 sessions each, 600 messages.
        await asyncio.gather(*(session(w) for w in workers for _ in range(20)))

    asyncio.run(main())
    assert sum(sent.values()) == 600
    assert max(sent.values()) <= 100
    assert len(sent) >= 6


def drain_from_two_threads(limiter: RateLimiter) -> dict[str, int]:
    """Take slots from a task thread and an event loop's thread until none are left."""
    counts = {"task": 0, "loop": 0}
    start = threading.Barrier(2)

    def task_thread():
        start.wait()
        while limiter.take(1)[0]:
            counts["task"] += 1

    async def session():
        while limiter.take(1)[0]:
            counts["loop"] += 1
            await asyncio.sleep(0)

    async def sessions():
        await asyncio.gather(*(session() for _ in range(20)))

    def loop_thread():
        start.wait()
        asyncio.run(sessions())

    threads = [
        threading.Thread(target=task_thread),
        threading.Thread(target=loop_thread),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def test_a_task_thread_and_an_event_loop_thread_share_one_limiter(shared):
    # The clock stands still: one window, whose capacity both threads drain.
    counts = drain_from_two_threads(shared.limiter(20_000, FakeClock()))
    assert counts["task"] > 0 and counts["loop"] > 0
    assert counts["task"] + counts["loop"] == 20_000


@pytest.mark.services
def test_two_threads_of_one_worker_refill_its_block_one_at_a_time(shared_redis):
    limiter = shared_redis.limiter(20_000, FakeClock())
    with redis_commands(shared_redis.url, shared_redis.prefix) as seen:
        counts = drain_from_two_threads(limiter)
    assert counts["task"] + counts["loop"] == 20_000
    # Ten blocks of 2,000 and the one ask that finds the window full. A thread
    # that finds the block empty while the other is refilling it waits for that
    # block instead of asking Redis for one more.
    assert seen.count("INCRBY") == 20_000 // limiter.block + 1
