"""Benchmark: preparing a send's email once, and what each batch task pays instead.

In one process on PostgreSQL, with the ~20 KB issue of bench_send:

- render: both segments rendered (templates, CSS inlined, MIME parts), stored;
- load: what a batch task does now when it starts: read the stored email and
  rebuild its quoted-printable parts, no rendering;
- for a send to N subscribers in batches of SENDING_BATCH_SIZE, renders per send
  before (each worker process rendered for itself, and again after every restart:
  a body that crashes the renderer restarted it at every task start) and now (once,
  stored; at most SENDING_MAX_WORKER_CRASHES tries when rendering kills the worker).

    make bench BENCH_ARGS=prepare      # or: python -m tests.bench.bench_prepare

It uses its own throwaway PostgreSQL database (quire_bench_prepare).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from tests.bench.support import SERVER, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent.parent
DB_NAME = "quire_bench_prepare"
ROUNDS = int(os.environ.get("BENCH_PREPARE_ROUNDS", "20"))
SIZES = [10_000, 100_000]
WORKER_PROCESSES = 8  # e.g. two machines running `celery worker --concurrency=4`


def median_ms(func, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> int:
    from tests.bench.bench_send import issue_body

    var_dir = ROOT / "var" / "bench-prepare"
    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{DB_NAME}",
            "DEBUG": "true",
            "SECRET_KEY": "bench",
            "QUIRE_VAR_DIR": str(var_dir),
            "SITE_URL": "https://news.bench.example",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")
    recreate_database(DB_NAME)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from issues.models import Issue
    from issues.sending import delivery
    from issues.sending.models import RenderedEmail, Send

    issue = Issue.objects.create(title="Bench issue", body=issue_body())
    send = Send.objects.create(issue=issue, status=Send.Status.SENDING)

    def render():
        RenderedEmail.objects.filter(send=send).delete()
        assert delivery.prepare_send(send_id=send.pk).state == delivery.READY

    def load():
        current = Send.objects.select_related("issue").get(pk=send.pk)
        assert delivery.prepared_for(current).state == delivery.READY

    render()  # warm up templates and the inliner
    render_ms = median_ms(render, ROUNDS)
    load_ms = median_ms(load, ROUNDS * 5)
    html = RenderedEmail.objects.filter(send=send).first().html
    print(f"email HTML: {len(html) / 1024:.1f} KB per segment, two segments")
    print(f"render + store (once per send now): {render_ms:8.1f} ms (median)")
    print(f"load stored (each batch task now):  {load_ms:8.1f} ms (median)")
    batch = settings.SENDING_BATCH_SIZE
    limit = settings.SENDING_MAX_WORKER_CRASHES
    print(
        f"{'subscribers':>11} {'batches':>8} {'renders before':>15} "
        f"{'renders now':>12} {'crash loop before':>18} {'crash loop now':>15}"
    )
    from issues.sending import emails

    real = emails.render_segment
    calls = []

    def counting(**kwargs):
        calls.append(kwargs["segment"])
        return real(**kwargs)

    for size in SIZES:
        batches = -(-size // batch)
        before = min(batches, WORKER_PROCESSES)
        # Measured: one batch task start per batch (the most there can be).
        RenderedEmail.objects.filter(send=send).delete()
        calls.clear()
        emails.render_segment = counting
        for _ in range(batches):
            load()
        emails.render_segment = real
        now = len(calls) // 2  # two segments per rendering
        print(
            f"{size:>11} {batches:>8} {before:>15} {now:>12} "
            f"{'every task start':>18} {f'{limit}, then paused':>15}"
        )
    print(
        f"renders before: one per worker process taking part ({WORKER_PROCESSES} "
        "here), each costing the render time above, and one more per process "
        "restart (by the old per-process cache rule); renders now: measured over "
        "one task start per batch, one per send (one more per edit during it). "
        "Crash loop: task starts that render a body which kills the worker."
    )
    print(f"cores: {os.cpu_count()}")
    from django.db import connections

    connections.close_all()
    drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
