"""What every benchmark shares: a throwaway PostgreSQL database on the bench server,
and the load client the HTTP benchmarks measure a server with."""

import multiprocessing
import os
import socket
import threading
import time

# The PostgreSQL server the benchmarks create their databases on.
SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")


def _admin_connection():
    import psycopg

    return psycopg.connect(f"{SERVER}/postgres", autocommit=True)


def recreate_database(name: str) -> str:
    """Drop and create the named database; return its DATABASE_URL."""
    with _admin_connection() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{SERVER}/{name}"


def drop_database(name: str) -> None:
    """Drop the named database if it exists."""
    with _admin_connection() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def bench_environment(*, database: str, broker: str, var_dir, **extra: str) -> None:
    """Set the environment a benchmark and its worker processes run Quire in: its
    own PostgreSQL database and Redis database, Celery tasks through the broker."""
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{database}",
            "CELERY_BROKER_URL": broker,
            "DEBUG": "true",
            "SECRET_KEY": "bench",
            "QUIRE_VAR_DIR": str(var_dir),
            "SITE_URL": "https://news.bench.example",
            "LOG_LEVEL": "WARNING",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **extra,
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")


def wait_for_workers(app, count: int, timeout: float = 60) -> None:
    """Return once `count` Celery workers answer a ping on the broker.

    Each ping goes over a connection of its own, closed afterwards: a broker
    connection left open here would be inherited by the processes the benchmark
    forks next (its smtplib senders hung on it).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.connection_for_write() as connection:
            answers = app.control.ping(timeout=0.5, connection=connection)
        if len(answers) >= count:
            return
    raise SystemExit(f"{count} worker(s) did not answer within {timeout:.0f} s")


# --- The load client --------------------------------------------------------------
def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 for a server to bind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    """Send one GET on a fresh connection; return the status and the body.

    headers: extra header lines, each ending in CRLF.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"{headers}\r\n".encode()
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _load_process(port, path, headers, expect, seconds, count, threads, out) -> None:
    """Hit path from `threads` clients for `seconds` (or until `count` requests in
    all, when count is not 0); report completed and failed requests."""
    done, errors = [0] * threads, [0] * threads
    stop = time.monotonic() + seconds
    left = [count]
    lock = threading.Lock()

    def client(i: int) -> None:
        while time.monotonic() < stop:
            if count:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
            try:
                status, _ = get(port, path, headers)
            except OSError:
                errors[i] += 1
                continue
            if status == expect:
                done[i] += 1
            else:
                errors[i] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put((sum(done), sum(errors)))


def throughput(
    port: int,
    path: str,
    *,
    seconds: float,
    concurrency: int,
    headers: str = "",
    expect: int = 200,
    count: int = 0,
) -> tuple[float, float]:
    """Return requests per second for path and the seconds it took, from
    `concurrency` clients in 2 processes (the client's own GIL kept out of the
    figure), for `seconds` or until `count` requests in all (count 0: no limit).

    Any answer other than `expect`, or a failed connection, stops the benchmark.
    """
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    per_process = max(1, concurrency // 2)
    share = count // 2
    procs = [
        ctx.Process(target=_load_process,
                    args=(port, path, headers, expect, seconds, share, per_process,
                          out))
        for _ in range(2)
    ]  # fmt: skip
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    errors = sum(r[1] for r in results)
    if errors:
        raise SystemExit(f"{errors} failed requests to {path}")
    return sum(r[0] for r in results) / elapsed, elapsed
