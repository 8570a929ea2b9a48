"""What every benchmark shares: a throwaway PostgreSQL database on the bench server."""

import os
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
