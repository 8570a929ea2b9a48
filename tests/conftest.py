"""Fixtures shared by every test: real SMTP server, real Celery worker."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.signals import task_retry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection

from tests.support.smtp import SMTPSink


@pytest.fixture
def editor(db):
    """A staff member who may write issues and papers (and nothing else)."""
    user = get_user_model().objects.create_user(
        "editor", "editor@example.org", "pw-for-tests-only", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="issues",
            codename__in=[
                f"{verb}_{model}"
                for verb in ("view", "add", "change")
                for model in ("issue", "paper")
            ],
        )
    )
    return user


@pytest.fixture(autouse=True)
def _empty_page_cache():
    """Start each test with no cached reader page and no content version known.

    Each test's database is rolled back or flushed, and the version number with
    it: a page cached by an earlier test could otherwise match a later one's.
    """
    from issues import content_version
    from issues.pagecache import pages, search_pages

    for step in ("before", "after"):
        pages.clear()
        search_pages.clear()
        content_version.forget()
        if step == "before":
            yield


def enqueued(callbacks: list) -> list:
    """Return the on-commit callbacks other than the page cache's own (which makes
    this process read the content version again)."""
    from issues import content_version

    return [
        callback for callback in callbacks if callback is not content_version.forget
    ]


@pytest.fixture(autouse=True)
def _outbox_in_tmp(settings, tmp_path):
    """Keep each test's outbox emails in its own folder."""
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"


@pytest.fixture(autouse=True)
def _no_eager_retries():
    """Fail a test whose eager task asks for a retry.

    Run eagerly, Celery runs every retry at once, one after another: the test sits
    through all of them (with any network backoff inside) and ends in the state
    after the last. Queue the task and run it once instead (test_webhooks.py).
    """
    retried = []

    def record(sender=None, request=None, reason=None, **kwargs):
        retried.append(f"{sender.name}: {reason!r}")

    task_retry.connect(record, weak=False)
    try:
        yield
    finally:
        task_retry.disconnect(record)
    if retried:
        pytest.fail(f"a task retried eagerly: {retried[0]}")


@pytest.fixture
def smtp_server() -> Iterator[SMTPSink]:
    """Start a real SMTP server (aiosmtpd) on a free port; Django sends to it."""
    sink = SMTPSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def send_smtp_to(settings, host: str, port: int) -> None:
    """Point Django's SMTP backend at host:port, plain, without a login."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = host
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""


@pytest.fixture
def smtp_settings(settings, smtp_server):
    """Point Django's SMTP backend at the test SMTP server."""
    send_smtp_to(settings, smtp_server.host, smtp_server.port)
    return smtp_server


@pytest.fixture
def paid_enabled(settings):
    """Switch paid subscriptions on: the Stripe keys are set (nothing calls Stripe)."""
    from tests.billing.stripe_fake import PAID_ENV

    for name, value in PAID_ENV.items():
        setattr(settings, name, value)
    return settings


def database_url() -> str:
    """Return a DATABASE_URL naming the test database this process uses."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = params.get("HOST") or "localhost"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{params['NAME']}"


def empty_broker() -> None:
    """Empty the test broker: no message of an earlier test reaches a new worker."""
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        shutil.rmtree(settings.CELERY_BROKER_FOLDER, ignore_errors=True)
        for key in ("data_folder_in", "control_folder"):
            Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key]).mkdir(
                parents=True, exist_ok=True
            )
    else:
        import redis

        # The test broker's Redis database is the tests' own. Purging the queue
        # would leave behind the messages a killed worker held unacknowledged,
        # which Redis hands out again after the visibility timeout, to a later run.
        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


class WorkerProcess:
    """A real `celery worker` process sharing this test's database and broker."""

    def __init__(self, *, concurrency: int = 2, extra_env: dict | None = None):
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = settings.VAR_DIR / f"worker-{os.getpid()}-{time.time_ns()}.log"
        self.hostname = f"test-{time.time_ns()}@{socket.gethostname()}"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url(),
                "DEBUG": "true",
                "CELERY_TASK_ALWAYS_EAGER": "false",
                "QUIRE_VAR_DIR": str(settings.VAR_DIR),
                "SITE_URL": settings.SITE_URL,
            }
        )
        env.update({key: str(value) for key, value in self.extra_env.items()})
        return env

    def start(self) -> "WorkerProcess":
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "newsletter", "worker",
                "--loglevel=INFO", f"--concurrency={self.concurrency}",
                "--pool=prefork", "--without-gossip", "--without-mingle",
                f"--hostname={self.hostname}",
            ],
            cwd=settings.BASE_DIR,
            env=self.env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and all its children at once, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def running_tasks(self) -> list | None:
        """Return the tasks the worker is running, or None if it does not answer."""
        from newsletter.celery import app

        inspect = app.control.inspect([self.hostname], timeout=2, limit=1)
        return (inspect.active() or {}).get(self.hostname)

    def stop(self) -> None:
        """Stop the worker at the end of a test: once it runs no task, kill it.

        Not a warm shutdown (SIGTERM): sent to the process group, it kills the
        prefork children mid-task, the pool forks new ones for the messages it
        had received (acks_late), terminates them again, and the filesystem
        transport polls once a second through each step; teardowns waited 20 s
        for the SIGKILL that followed. Sent to the main process only, it still
        takes seconds of polling. Nothing the worker would do after the test
        matters: it is killed between tasks, and the broker is emptied after it.
        """
        if self.proc and self.proc.poll() is None:
            deadline = time.monotonic() + 30
            while self.running_tasks() != [] and time.monotonic() < deadline:
                time.sleep(0.1)
            self.kill()
        self.log.close()


@pytest.fixture
def celery_worker_factory(transactional_db, settings) -> Iterator:
    """Start real Celery worker processes; the test must use committed data."""
    from newsletter.celery import app

    empty_broker()
    workers: list[WorkerProcess] = []
    previous_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False

    def start(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(**kwargs).start()
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()
        app.conf.task_always_eager = previous_eager
        empty_broker()


@pytest.fixture
def celery_worker(celery_worker_factory) -> WorkerProcess:
    """One real Celery worker process."""
    return celery_worker_factory()


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, message=""):
    """Poll until predicate() is truthy and return its value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout}s waiting for {message or predicate}"
            )
        time.sleep(interval)
