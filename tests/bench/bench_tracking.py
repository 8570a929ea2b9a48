"""Benchmark: the open pixel and the click redirect under load, a burst of
prefetches, the flush, and the issue report on 100,000 subscribers.

Run: `make bench BENCH_ARGS=tracking` (or `python -m tests.bench.bench_tracking`).

On a throwaway PostgreSQL database (quire_bench_tracking) and gunicorn (DEBUG off,
BENCH_WORKERS sync workers), with the buffer in Redis (BENCH_TRACKING_REDIS,
default redis://127.0.0.1:6379/9) and then in the embedded default's file:

- requests per second of the minimal Django view, the pixel and the redirect,
  interleaved in rounds; target: each at least 0.8 of the minimal view's rate;
- the issue page's median and p95 response time alone, then while 20,000
  prefetches of the pixel arrive as fast as the clients can send them (more than
  the 20,000 a minute Apple's proxies send after a send); and the flush of them;
- per recipient, what building a message costs without and with tracking;
- the issue report (``issue_report``) on 100,000 subscribers and 2,000,000 events
  (their daily figures made by SQL from the events, as the flush would have);
  target under 200 ms; and /admin/ (the author's home) as a superuser.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.bench.support import (
    SERVER,
    drop_database,
    free_port,
    get,
    recreate_database,
    throughput,
)

DB_NAME = os.environ.get("BENCH_TRACKING_DB", "quire_bench_tracking")
REDIS = os.environ.get("BENCH_TRACKING_REDIS", "redis://127.0.0.1:6379/9")
ROOT = Path(__file__).resolve().parent.parent.parent
VAR = ROOT / "var" / "bench-tracking"
ROUND_SECONDS = float(os.environ.get("BENCH_ROUND_SECONDS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
BURST = int(os.environ.get("BENCH_TRACKING_BURST", "20000"))
SUBSCRIBERS = int(os.environ.get("BENCH_TRACKING_SUBSCRIBERS", "100000"))
EVENTS = int(os.environ.get("BENCH_TRACKING_EVENTS", "2000000"))
# Which parts run: any of server, build, report (BENCH_TRACKING_PARTS=report).
PARTS = os.environ.get("BENCH_TRACKING_PARTS", "server,build,report").split(",")
MINIMAL_PATH = "/bench/minimal/"
ISSUE_PATH = "/issues/bench-issue/"
TARGET = 0.8
REPORT_TARGET_MS = 200
APPLE = "User-Agent: Mozilla/5.0\r\n"
PERSON = (
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
)


def _env(buffer: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"{SERVER}/{DB_NAME}",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "QUIRE_VAR_DIR": str(VAR),
        "STATIC_ROOT": str(VAR / "static"),
        "SITE_URL": "http://127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        "ANALYTICS_BUFFER_URL": buffer,
        # The in-process client times /admin/ as a superuser signed in already.
        "QUIRE_REQUIRE_2FA_FOR_SUPERUSERS": "false",
    }


def _start_server(port: int, buffer: str) -> subprocess.Popen:
    log = open(VAR / "gunicorn.log", "ab")  # noqa: SIM115 - lives with the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn",
         "tests.bench.bench_content:bench_application()", "--workers", str(WORKERS),
         "--bind", f"127.0.0.1:{port}", "--worker-class", "sync",
         "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **_env(buffer)},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if get(port, MINIMAL_PATH)[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"gunicorn did not start; see {VAR / 'gunicorn.log'}")


def _throughput(port, path, *, headers="", expect=200, seconds=None, count=0):
    return throughput(
        port, path, headers=headers, expect=expect, count=count,
        seconds=seconds or ROUND_SECONDS, concurrency=CONCURRENCY,
    )  # fmt: skip


def _latencies(port: int, path: str, n: int, stop=None) -> list[float]:
    timings = []
    for _ in range(n):
        if stop is not None and stop.is_set():
            break
        start = time.perf_counter()
        assert get(port, path, PERSON)[0] == 200
        timings.append(time.perf_counter() - start)
    return timings


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[int(len(values) * 0.95) - 1]
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def _setup() -> tuple[str, str]:
    """Create the issue, a send to a few subscribers; return pixel and link paths."""
    from django.utils import timezone

    from issues.models import Issue
    from issues.sending.emails.tracking import delivery_part, link_part
    from issues.sending.models import Delivery, Send
    from subscribers.models import Subscriber

    issue = Issue.objects.create(
        title="The benchmark issue", slug="bench-issue",
        body="Read [the paper](https://arxiv.org/abs/2201.03545).\n\n" * 50,
        status=Issue.Status.PUBLISHED, published_at=timezone.now(),
    )  # fmt: skip
    reader = Subscriber.objects.create(email="reader@bench.example", status="active")
    send = Send.objects.create(issue=issue, status=Send.Status.DONE, total=1)
    delivery = Delivery.objects.create(
        send=send, subscriber=reader, email=reader.email, status="sent",
        sent_at=timezone.now() - timezone.timedelta(hours=1),
    )  # fmt: skip
    part = delivery_part(delivery.pk)
    link = link_part(send_id=send.pk, number=1, url="https://arxiv.org/abs/2201.03545")
    return f"/o/{part}.gif", f"/r/{part}/{link}/"


def _server_figures(buffer: str, pixel: str, redirect: str) -> None:
    from issues.analytics.flush import flush_hits

    port = free_port()
    server = _start_server(port, buffer)
    try:
        for _ in range(20):  # warm every worker
            get(port, MINIMAL_PATH)[0], get(port, pixel)[0], get(port, ISSUE_PATH)[0]
        rounds: dict[str, list[float]] = {"minimal": [], "pixel": [], "redirect": []}
        for _ in range(ROUNDS):
            rounds["minimal"].append(_throughput(port, MINIMAL_PATH)[0])
            rounds["pixel"].append(_throughput(port, pixel, headers=APPLE)[0])
            rounds["redirect"].append(
                _throughput(port, redirect, headers=PERSON, expect=302)[0]
            )
        for name in ("pixel", "redirect"):
            ratio = statistics.median(
                a / b for a, b in zip(rounds[name], rounds["minimal"], strict=True)
            )
            verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
            print(f"  {name:<9} {statistics.median(rounds[name]):7.0f} req/s, "
                  f"{ratio:.2f} of the minimal view's "
                  f"{statistics.median(rounds['minimal']):.0f} req/s "
                  f"(target >= {TARGET}) -> {verdict}")  # fmt: skip
        flush_hits()  # empty the buffer before the burst
        alone = _latencies(port, ISSUE_PATH, 200)
        stop = threading.Event()
        during: list[float] = []
        sampler = threading.Thread(
            target=lambda: during.extend(_latencies(port, ISSUE_PATH, 100000, stop))
        )
        sampler.start()
        rate, elapsed = _throughput(
            port, pixel, headers=APPLE, seconds=600, count=BURST
        )
        stop.set()
        sampler.join()
        print(f"  issue page alone:               {_ms(alone)}")
        print(f"  issue page during {BURST} prefetches ({elapsed:.1f} s, "
              f"{rate:.0f}/s): {_ms(during)}")  # fmt: skip
        start = time.perf_counter()
        stored = flush_hits()
        took = time.perf_counter() - start
        print(f"  flush of the burst: {stored} hits stored in {took:.2f} s "
              f"({stored / took:.0f} hits/s)")  # fmt: skip
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def _build_cost() -> None:
    from issues.models import Issue
    from issues.sending.emails import Recipient, render_segment
    from issues.sending.models import Send

    body = "\n\n".join(
        f"Paragraph {n} on [a paper](https://arxiv.org/abs/2201.{n + 10000:05d}) "
        "and why its training recipe matters more than its architecture. " * 3
        for n in range(60)
    )
    issue = Issue.objects.create(title="Build cost", slug="build-cost", body=body)
    send = Send.objects.create(issue=issue)
    prepared = render_segment(issue=issue, segment="free", send_id=send.pk)
    n = 20000
    for label, tracking in (("without tracking", False), ("with tracking", True)):
        recipients = [
            Recipient(email=f"r{i}@example.org", token="x" * 32,
                      message_id=f"m{i}@bench", delivery_id=i + 1, tracking=tracking)
            for i in range(n)
        ]  # fmt: skip
        start = time.perf_counter()
        for recipient in recipients:
            prepared.build(recipient, dot_stuffed=True)
        took = time.perf_counter() - start
        print(f"  message build {label:<17}: {took / n * 1e6:6.1f} µs per recipient "
              f"({len(prepared.build(recipients[0])) // 1024} KiB)")  # fmt: skip


def _report_figures() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from issues.analytics.reports import issue_report
    from issues.models import Issue
    from issues.sending.models import Send
    from subscribers.models import Subscriber, Subscription

    issue = Issue.objects.create(
        title="Report issue", slug="report-issue", body="x",
        status=Issue.Status.PUBLISHED, published_at=timezone.now(),
    )  # fmt: skip
    send = Send.objects.create(
        issue=issue, status=Send.Status.DONE, total=SUBSCRIBERS,
        sent_count=SUBSCRIBERS, started_at=timezone.now() - timezone.timedelta(days=30),
    )  # fmt: skip
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO subscribers_subscriber (email, email_hash, name, status, "
            "paused, source, tracking, token, created, consent_ip, "
            "consent_user_agent, consent_source, consent_text_version, "
            "confirmation_nonce) "
            "SELECT 'r' || n || '@bench.example', md5(n::text), '', 'active', false, "
            "'form', true, md5('t' || n), now(), NULL, '', '', '', '' "
            "FROM generate_series(1, %s) n",
            [SUBSCRIBERS],
        )
        # Inserted in SQL: they join the default newsletters as a signup does.
        Subscription.join_defaults(Subscriber.objects.values("pk"))
        cursor.execute(
            "INSERT INTO sending_delivery (send_id, subscriber_id, email, segment, "
            "status, attempts, last_error, message_id, sent_at, claimed_by, "
            "possibly_duplicate, crashes) "
            "SELECT %s, s.id, s.email, 'free', 'sent', 1, '', '', %s, '', false, 0 "
            "FROM subscribers_subscriber s WHERE s.email LIKE 'r%%@bench.example'",
            [send.pk, send.started_at],
        )
        cursor.execute(
            "INSERT INTO analytics_link (issue_id, number, url) SELECT %s, n, "
            "'https://example.org/' || n FROM generate_series(1, 20) n",
            [issue.pk],
        )
        # Events over 30 days: opens and clicks, a third of them machines.
        cursor.execute(
            "INSERT INTO analytics_event (hit_id, kind, at, issue_id, delivery_id, "
            "link_id, machine, reason, source) "
            "SELECT 'b' || n, CASE WHEN n %% 3 = 0 THEN 'click' ELSE 'open' END, "
            "%s + (n %% 720) * interval '1 hour', %s, "
            "(SELECT min(id) FROM sending_delivery WHERE send_id = %s) + n %% %s, "
            "CASE WHEN n %% 3 = 0 THEN (SELECT min(id) FROM analytics_link "
            "WHERE issue_id = %s) + n %% 20 END, n %% 3 = 1, "
            "CASE WHEN n %% 3 = 1 THEN 'apple-privacy-proxy' ELSE '' END, 'quire' "
            "FROM generate_series(1, %s) n",
            [send.started_at, issue.pk, send.pk, SUBSCRIBERS, issue.pk, EVENTS],
        )
        # The daily, hourly and per-link figures the flush keeps, made from them.
        cursor.execute(
            "INSERT INTO analytics_dailyissuestat (issue_id, day, delivered, "
            "bounced, complaints, opens, unique_opens, machine_opens, clicks, "
            "unique_clicks, machine_clicks, unsubscribes, web_views, web_visitors) "
            "SELECT issue_id, at::date, 0, 0, 0, "
            "count(*) FILTER (WHERE NOT machine), "
            "count(DISTINCT delivery_id) FILTER (WHERE NOT machine), "
            "count(*) FILTER (WHERE machine AND kind = 'open'), "
            "count(*) FILTER (WHERE NOT machine AND kind = 'click'), "
            "count(DISTINCT delivery_id) FILTER (WHERE NOT machine AND kind='click'),"
            " count(*) FILTER (WHERE machine AND kind = 'click'), 0, 0, 0 "
            "FROM analytics_event WHERE issue_id = %s GROUP BY issue_id, at::date",
            [issue.pk],
        )
        cursor.execute(
            "INSERT INTO analytics_hourlyissuestat (issue_id, hour, unique_opens, "
            "unique_clicks, machine) SELECT issue_id, date_trunc('hour', at), "
            "count(DISTINCT delivery_id) FILTER (WHERE NOT machine), "
            "count(DISTINCT delivery_id) FILTER (WHERE NOT machine AND kind='click'),"
            " count(*) FILTER (WHERE machine) FROM analytics_event "
            "WHERE issue_id = %s GROUP BY 1, 2",
            [issue.pk],
        )
        cursor.execute(
            "INSERT INTO analytics_dailylinkstat (link_id, day, clicks, "
            "unique_clicks) SELECT link_id, at::date, count(*), "
            "count(DISTINCT delivery_id) FROM analytics_event WHERE issue_id = %s "
            "AND link_id IS NOT NULL AND NOT machine GROUP BY 1, 2",
            [issue.pk],
        )
        cursor.execute("ANALYZE")
    print(f"  setup: {SUBSCRIBERS} subscribers, {SUBSCRIBERS} deliveries, "
          f"{EVENTS} events and their daily figures in "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    issue_report(issue)
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        report = issue_report(issue)
        timings.append(time.perf_counter() - start)
    median = statistics.median(timings) * 1000
    verdict = "ok" if median < REPORT_TARGET_MS else "ABOVE TARGET"
    print(f"  issue_report: {_ms(timings)} (target < {REPORT_TARGET_MS} ms) -> "
          f"{verdict}; {report.unique_opens} unique human opens, "
          f"{report.machine_opens} machine opens")  # fmt: skip
    admin = get_user_model().objects.create_superuser("bench", "b@x.example", "pw")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin)
    for path, name in ((f"/admin/issues/issue/{issue.pk}/report/", "report page"),
                       ("/admin/", "/admin/ (the home)")):  # fmt: skip
        status = client.get(path).status_code
        timings = []
        for _ in range(10):
            start = time.perf_counter()
            client.get(path)
            timings.append(time.perf_counter() - start)
        print(f"  {name}: HTTP {status}, {_ms(timings)} (in-process client)")


def main() -> int:
    os.environ.update(_env(REDIS))
    VAR.mkdir(parents=True, exist_ok=True)
    recreate_database(DB_NAME)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", verbosity=0, interactive=False)
        import redis

        redis.Redis.from_url(REDIS).delete(
            "quire:analytics:hits", "quire:analytics:processing"
        )
        pixel, redirect = _setup()
        print(f"server: gunicorn, {WORKERS} sync workers, PostgreSQL, DEBUG off; "
              f"{CONCURRENCY} clients; cores: {os.cpu_count()}")  # fmt: skip
        for buffer in (REDIS, "file") if "server" in PARTS else ():
            print(f"buffer: {buffer}")
            from django.conf import settings

            settings.ANALYTICS_BUFFER_URL = buffer
            _server_figures(buffer, pixel, redirect)
        if "build" in PARTS:
            _build_cost()
        if "report" in PARTS:
            _report_figures()
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
