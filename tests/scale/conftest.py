"""A Quire deployment across several hosts, each a network namespace (root only).

The cluster: a database host (PostgreSQL from the machine's binaries, and Redis), an
SMTP sink host and, per test, worker hosts running real Celery workers. The test
process sits on the same subnet through the bridge and plays the operator: it
migrates, seeds, publishes, runs the reconciler as beat would and reads the rows.
Nothing of the test's own database or broker is used.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.conftest import wait_for
from tests.scale.network import Host, Network

PG_PORT = 5432
REDIS_PORT = 6379
SMTP_PORT = 2525
DB_NAME = "quire"
# Deployment variables of the test process that must not leak into the cluster.
NOT_INHERITED = ("DATABASE_", "CELERY_", "EMAIL_", "SENDING_", "CACHE_", "REDIS_")
NOT_INHERITED_NAMES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SITE_URL",
    "QUIRE_VAR_DIR",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def pytest_collection_modifyitems(config, items):
    """Mark every test here `scale`; run them only when `-m` names that marker.

    They need root and take minutes: a plain `pytest` or `-m "not browser"` leaves
    them out (deselected, not skipped), `make test-scale` (`-m scale`) runs them.
    """
    here = [item for item in items if "tests/scale/" in str(item.fspath)]
    for item in here:
        item.add_marker(pytest.mark.scale)
    if "scale" in (config.option.markexpr or "") or not here:
        return
    config.hook.pytest_deselected(items=here)
    items[:] = [item for item in items if item not in here]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no /usr/lib/postgresql/*/bin/{name} on this machine")
    return found[-1]


class Cluster:
    """The hosts, their processes, and what the test reads from them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.network = Network()
        self.procs: list[tuple[subprocess.Popen, object]] = []
        self.postgres: subprocess.Popen | None = None
        self.sink_dump = root / "sink-recipients.json"

    def start(self, *, sink_delay_ms: float) -> None:
        self.db = self.network.add_host("db")
        self.sink = self.network.add_host("sink")
        self.start_database()
        self.start_sink(sink_delay_ms)
        self.manage("migrate", "--noinput")
        # The admin pages need the static files collected, as in any deployment.
        self.manage("collectstatic", "--noinput")

    # --- processes ------------------------------------------------------------------

    def spawn(
        self, command: list[str], *, name: str, env: dict | None = None
    ) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append((proc, log))
        if name == "postgres":
            self.postgres = proc
        return proc

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    # --- the database host ----------------------------------------------------------

    def start_database(self) -> None:
        data = self.root / "pgdata"
        data.mkdir()
        shutil.chown(self.root, "postgres")
        shutil.chown(data, "postgres")
        subprocess.run(
            ["runuser", "-u", "postgres", "--", _pg_bin("initdb"), "-D", str(data),
             "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True,
        )  # fmt: skip
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.network.subnet} trust\n")
        self.spawn(
            self.db.command(
                "runuser", "-u", "postgres", "--", _pg_bin("postgres"), "-D", str(data),
                "-c", f"listen_addresses={self.db.address}", "-c", f"port={PG_PORT}",
                "-c", f"unix_socket_directories={self.root}",
                "-c", "fsync=off", "-c", "max_connections=60",
            ),
            name="postgres",
        )  # fmt: skip
        self.redis = self.spawn(
            self.db.command(
                "redis-server", "--port", str(REDIS_PORT), "--bind", self.db.address,
                "--save", "", "--appendonly", "no", "--dir", str(self.root),
                # The subnet is the deployment's private network.
                "--protected-mode", "no",
            ),
            name="redis",
        )  # fmt: skip

        def answers():
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                return False

        wait_for(answers, timeout=60, interval=0.2, message="PostgreSQL answering")
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        wait_for(lambda: self._redis_answers(), timeout=30, message="Redis answering")

    def _redis_answers(self) -> bool:
        try:
            with socket.create_connection(
                (self.db.address, REDIS_PORT), timeout=2
            ) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop_database(self) -> None:
        # A fast shutdown, so that PostgreSQL leaves no shared memory behind.
        pid_file = self.root / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 20
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)

    def dsn(self, name: str = DB_NAME) -> str:
        return f"postgresql://postgres@{self.db.address}:{PG_PORT}/{name}"

    def sql(self, query, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    # --- the SMTP sink host ---------------------------------------------------------

    def start_sink(self, delay_ms: float) -> None:
        self.spawn(
            self.sink.command(
                sys.executable, "-m", "tests.scale.sink", self.sink.address,
                str(SMTP_PORT), str(delay_ms), str(self.sink_dump),
            ),
            name="sink",
        )  # fmt: skip

        def listening():
            try:
                socket.create_connection((self.sink.address, SMTP_PORT), 2).close()
                return True
            except OSError:
                return False

        wait_for(listening, timeout=30, message="the SMTP sink listening")

    def _sink_command(self, verb: bytes) -> str:
        with socket.create_connection((self.sink.address, SMTP_PORT), 10) as s:
            f = s.makefile("rwb")
            f.readline()
            f.write(verb + b"\r\n")
            f.flush()
            answer = f.readline().decode()
            f.write(b"QUIT\r\n")
            f.flush()
        return answer[4:].strip()

    def sent_by_host(self) -> dict[str, int]:
        """Messages the sink has received, per sending host's address."""
        return json.loads(self._sink_command(b"STAT"))

    def received(self) -> dict[str, list[str]]:
        """Every recipient the sink received, with the address of each copy's host."""
        self._sink_command(b"DUMP")
        return json.loads(self.sink_dump.read_text())

    # --- Quire on the hosts ---------------------------------------------------------

    def env(self, host: str, **extra) -> dict:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(NOT_INHERITED) and key not in NOT_INHERITED_NAMES
        }
        var = self.root / f"var-{host}"
        var.mkdir(exist_ok=True)
        env.update(
            {
                "DATABASE_URL": self.dsn(),
                "CELERY_BROKER_URL": f"redis://{self.db.address}:{REDIS_PORT}/0",
                "CACHE_URL": f"redis://{self.db.address}:{REDIS_PORT}/1",
                "EMAIL_URL": f"smtp://{self.sink.address}:{SMTP_PORT}",
                "DEBUG": "false",
                "SECRET_KEY": "scale-test-" + "k" * 40,
                "ALLOWED_HOSTS": "testserver",
                "SITE_URL": "https://news.example.org",
                "QUIRE_VAR_DIR": str(var),
                "CELERY_TASK_ALWAYS_EAGER": "false",
            }
        )
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def manage(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR, env=self.env("ops"),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode:
            pytest.fail(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")

    def driver(self, *args: str) -> dict:
        """Run one operator command from the test's side; return its JSON answer."""
        done = subprocess.run(
            [sys.executable, "-m", "tests.scale.driver", *args],
            cwd=settings.BASE_DIR, env=self.env("ops"),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode:
            pytest.fail(f"driver {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def add_worker(self, name: str, **env) -> tuple[Host, subprocess.Popen]:
        """A new host on the network running one real Celery worker process.

        The host has a name of its own (a UTS namespace), as a machine would.
        """
        host = self.network.add_host(name)
        proc = self.spawn(
            host.command(
                "unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh",
                sys.executable, "-m", "celery", "-A", "newsletter", "worker",
                "--pool=solo", "--without-gossip", "--without-mingle",
                "--loglevel=INFO", f"--hostname={name}@{name}",
            ),
            name=name,
            env=self.env(name, **env),
        )  # fmt: skip
        return host, proc

    def close(self) -> None:
        for proc, _log in reversed(self.procs):
            if proc is self.postgres:
                self.stop_database()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc, log in self.procs:
            proc.wait(10)
            log.close()
        self.network.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("the scale tests make network namespaces: run them as root")
    root = Path(tempfile.mkdtemp(prefix=f"quire-scale-{os.getpid()}-"))
    made = None
    try:
        made = Cluster(root)
        made.start(sink_delay_ms=float(os.environ.get("SCALE_SINK_DELAY_MS", "1")))
        yield made
    finally:
        if made is not None:
            made.close()
        shutil.rmtree(root, ignore_errors=True)
