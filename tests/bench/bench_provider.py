"""Benchmark: one issue sent to 100,000 subscribers through a provider's API.

A local fake Mailgun API in its own process (a threaded HTTP server: concurrent
calls are answered concurrently) answers each call PROVIDER_DELAY_MS (default 150)
milliseconds after it arrived. Quire sends through anymail's real Mailgun backend
from one Celery worker process (``--pool=solo``) on PostgreSQL and Redis. Prints the
end-to-end seconds (from publishing to the send being done), the API calls made,
messages per second and the worker's peak memory (VmHWM).

    make bench BENCH_ARGS=provider        # or: python -m tests.bench.bench_provider
    BENCH_PROVIDER_SIZE=10000 PROVIDER_DELAY_MS=300 python -m tests.bench.bench_provider

It uses its own throwaway PostgreSQL database (quire_bench_provider) and Redis db 4.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import Process
from pathlib import Path

from tests.bench.bench_send import (
    create_subscribers,
    issue_body,
    peak_memory_kb,
    process_cpu_seconds,
)
from tests.bench.support import (
    bench_environment,
    recreate_database,
    wait_for_workers,
)

ROOT = Path(__file__).resolve().parent.parent.parent
DB_NAME = "quire_bench_provider"
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/4")
SIZE = int(os.environ.get("BENCH_PROVIDER_SIZE", "100000"))
DELAY_MS = int(os.environ.get("PROVIDER_DELAY_MS", "150"))
DOMAIN = "bench.example"


# --- the fake provider API (its own process) ---------------------------------------


def run_fake_mailgun(port: int, delay_ms: int) -> None:
    """Answer Mailgun's send call as Mailgun does, delay_ms after it arrived."""
    lock = threading.Lock()
    stats = {"calls": 0, "recipients": 0, "in_flight": 0, "most_in_flight": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _answer(self, status: int, data: dict) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            with lock:
                self._answer(200, dict(stats))

        def do_POST(self) -> None:
            arrived = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            recipients = body.count(b"&to=") + body.startswith(b"to=")
            with lock:
                stats["calls"] += 1
                stats["recipients"] += recipients
                stats["in_flight"] += 1
                stats["most_in_flight"] = max(
                    stats["most_in_flight"], stats["in_flight"]
                )
                call = stats["calls"]
            time.sleep(max(0.0, arrived + delay_ms / 1000 - time.monotonic()))
            with lock:
                stats["in_flight"] -= 1
            self._answer(
                200, {"id": f"<bench.{call}@{DOMAIN}>", "message": "Queued. Thank you."}
            )

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def fake_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as answer:  # noqa: S310
        return json.loads(answer.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the run -----------------------------------------------------------------------


def setup_environment(var_dir: Path, port: int) -> None:
    bench_environment(
        database=DB_NAME,
        broker=REDIS,
        var_dir=var_dir,
        EMAIL_BACKEND="anymail.backends.mailgun.EmailBackend",
        ANYMAIL_MAILGUN_API_KEY="key-bench",
        ANYMAIL_MAILGUN_API_URL=f"http://127.0.0.1:{port}/v3",
        ANYMAIL_MAILGUN_SENDER_DOMAIN=DOMAIN,
    )


def start_worker(var_dir: Path) -> subprocess.Popen:
    log = open(var_dir / "worker.log", "wb")  # noqa: SIM115 - lives with the proc
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "newsletter", "worker",
            "--pool=solo", "--loglevel=WARNING", "--without-gossip",
            "--without-mingle", "--without-heartbeat", "--hostname=benchprovider@%h",
        ],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def main() -> int:
    var_dir = ROOT / "var" / "bench-provider"
    var_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    setup_environment(var_dir, port)
    recreate_database(DB_NAME)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from issues.models import Issue
    from issues.sending import services
    from issues.sending.models import Send
    from issues.sending.provider_batches import provider_style
    from newsletter.celery import app

    fake = Process(target=run_fake_mailgun, args=(port, DELAY_MS), daemon=True)
    fake.start()
    create_subscribers(SIZE, active=SIZE)
    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)
    worker = start_worker(var_dir)
    wait_for_workers(app, 1)
    issue = Issue.objects.create(title=f"Bench provider {SIZE}", body=issue_body())
    cpu_before = process_cpu_seconds(worker.pid)
    start = time.perf_counter()
    send = services.publish_issue(issue=issue)  # commits; the start task is queued
    peak = 0
    failures = 0
    while True:
        time.sleep(0.25)
        peak = max(peak, peak_memory_kb(worker.pid))
        status = Send.objects.filter(pk=send.pk).values_list("status", flat=True)[0]
        if status == Send.Status.DONE:
            break
        if worker.poll() is not None:
            fake.terminate()
            raise SystemExit("the worker died; see var/bench-provider/worker.log")
    elapsed = time.perf_counter() - start
    peak = max(peak, peak_memory_kb(worker.pid))
    worker_cpu = process_cpu_seconds(worker.pid) - cpu_before
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    stats = fake_stats(port)
    fake.terminate()
    fake.join()
    send.refresh_from_db()
    print(
        f"fake Mailgun API: threaded, answers each call {DELAY_MS} ms after it"
        f" arrived; batch size {provider_style().batch_size},"
        f" {settings.SENDING_PROVIDER_CALLS} calls in flight per worker; 1 worker"
    )
    print(
        f"{'subscribers':>11} {'seconds':>8} {'calls':>6} {'msg/s':>9} "
        f"{'most in flight':>14} {'peak MB':>8} {'worker CPU s':>12}"
    )
    print(
        f"{SIZE:>11} {elapsed:>8.1f} {stats['calls']:>6} "
        f"{send.sent_count / elapsed:>9.1f} {stats['most_in_flight']:>14} "
        f"{peak / 1024:>8.0f} {worker_cpu:>12.1f}",
        flush=True,
    )
    if send.sent_count != SIZE or stats["recipients"] != SIZE:
        print(
            f"  MISMATCH: sent {send.sent_count},"
            f" the API got {stats['recipients']} recipients"
        )
        failures += 1
    print(
        "seconds: from publishing (audience freeze included) to the send being done;"
        " calls: API calls the fake provider answered; msg/s: sent / seconds;"
        " most in flight: calls the provider held at once; peak MB: VmHWM of the"
        " worker process."
    )
    print(f"cores: {os.cpu_count()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
