"""The author's dashboard and growth page on a large publication.

Run: `make bench BENCH_ARGS=dashboard` (or `python -m tests.bench.bench_dashboard`).

Sets up a throwaway PostgreSQL database, quire_bench_dashboard, on BENCH_POSTGRES_URL
with BENCH_SUBSCRIBERS (100,000) subscribers who joined over two years (a tenth of
them left), BENCH_MEMBERS (5,000) paid memberships, six sent issues with one
delivery per subscriber each, and bounces and complaints from the provider. Then:

- fills the daily figures once from nothing (what the first beat run does) and
  times beat's refresh of today and yesterday;
- times the dashboard (/admin/) and the growth page (/admin/growth/?range=…), as a
  signed-in superuser, median and p95 of BENCH_REQUESTS requests each.

seed_publication() and time_pages() are the hooks another benchmark (tracking) can
call to time the same pages on its own data.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from tests.bench.support import SERVER, recreate_database

DB_NAME = "quire_bench_dashboard"
ROOT = Path(__file__).resolve().parent.parent.parent
VAR = ROOT / "var" / "bench-dashboard"
SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "100000"))
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "5000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "30"))
ISSUES = 6
# The pages to time: the dashboard and the growth page in each range.
PAGES = [
    "/admin/",
    "/admin/growth/?range=30d",
    "/admin/growth/?range=12m",
    "/admin/growth/?range=all",
]


def _setup() -> None:
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{DB_NAME}",
            "DEBUG": "true",
            "SECRET_KEY": "bench",
            "QUIRE_VAR_DIR": str(VAR),
            "CELERY_BROKER_URL": "filesystem://localhost//",
            "ALLOWED_HOSTS": "testserver",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_publication(*, subscribers: int = SUBSCRIBERS, members: int = MEMBERS) -> None:
    """Fill the database with a publication of that size, set-based (PostgreSQL)."""
    from django.db import connection

    from issues.sending.models import Delivery
    from subscribers.models import Subscriber, Subscription
    from tests.factories.issues import IssueFactory

    with connection.cursor() as cursor:
        # Joined over two years, most confirmed within a day, a tenth left since.
        cursor.execute(
            """
            INSERT INTO subscribers_subscriber (email, email_hash, name, status,
                paused, source, token, created, confirmed_at, unsubscribed_at,
                consent_user_agent, consent_source, consent_text_version,
                confirmation_nonce)
            SELECT 'reader' || n || '@example.org', md5(n::text) || md5(n::text),
                '', CASE WHEN n %% 10 = 0 THEN 'unsubscribed' ELSE 'active' END,
                false,
                (ARRAY['form', 'form', 'import', 'admin', 'checkout'])[n %% 5 + 1],
                md5('t' || n) || md5('u' || n), joined, joined + interval '3 hours',
                CASE WHEN n %% 10 = 0 THEN joined + interval '40 days' END,
                '', 'bench', '', ''
            FROM (SELECT n, now() - (n %% 730) * interval '1 day'
                      - (n %% 24) * interval '1 hour' AS joined
                  FROM generate_series(1, %s) AS n) AS s
            """,
            [subscribers],
        )
        cursor.execute(
            """
            INSERT INTO billing_membership (subscriber_id, status, stripe_customer_id,
                stripe_subscription_id, stripe_price_id, amount, currency, interval,
                cancel_at_period_end, complimentary, last_failed_invoice_attempt,
                created, updated, canceled_at)
            SELECT id, CASE WHEN id %% 7 = 0 THEN 'canceled' ELSE 'active' END,
                'cus_' || id, 'sub_' || id, '',
                CASE WHEN id %% 3 = 0 THEN 8000 ELSE 800 END,
                'usd', CASE WHEN id %% 3 = 0 THEN 'year' ELSE 'month' END, false, false,
                '', created, created,
                CASE WHEN id %% 7 = 0 THEN created + interval '60 days' END
            FROM subscribers_subscriber ORDER BY id LIMIT %s
            """,
            [members],
        )
    # Inserted in SQL: they join the default newsletters as a signup does.
    Subscription.join_defaults(Subscriber.objects.values("pk"))
    fields = [f for f in Delivery._meta.concrete_fields if not f.primary_key]
    given = {
        "send_id": "%(send)s",
        "subscriber_id": "id",
        "email": "email",
        "status": "'sent'",
        "segment": "'free'",
        "message_id": "'<' || id || '.' || %(send)s || '@bench>'",
        "sent_at": "now()",
    }
    columns, values, defaults = [], [], {}
    for f in fields:
        columns.append(f.column)
        if f.column in given:
            values.append(given[f.column])
        else:
            defaults[f.column] = None if f.null else f.get_default()
            values.append(f"%({f.column})s")
    for n in range(ISSUES):
        issue = IssueFactory(published=True, title=f"Bench issue {n + 1}")
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO sending_send (issue_id, status, total, sent_count,
                    failed_count, bounced_count, skipped_count, resolved_after_crash,
                    created, started_at, finished_at, last_error, paused_reason,
                    render_attempts)
                VALUES (%s, 'done', %s, %s, 0, 0, 0, 0,
                    now() - %s * interval '30 days', now() - %s * interval '30 days',
                    now() - %s * interval '30 days', '', '', 0) RETURNING id""",
                [issue.pk, subscribers, subscribers, n, n, n],
            )
            send = cursor.fetchone()[0]
            # The columns and expressions are the model's and the above, no input.
            cursor.execute(
                f"INSERT INTO sending_delivery ({', '.join(columns)}) "  # noqa: S608
                f"SELECT {', '.join(values)} FROM subscribers_subscriber",
                {"send": send, **defaults},
            )
            # One bounce in 200 and one complaint in 2,000, reported by the provider.
            cursor.execute(
                """INSERT INTO sending_emailevent (event_id, event_type, email,
                    message_id, esp, description, timestamp, received_at)
                SELECT 'ev-' || id, CASE WHEN subscriber_id %% 2000 = 0
                    THEN 'complained' ELSE 'bounced' END, email, message_id, 'bench',
                    '', now(), now()
                FROM sending_delivery
                WHERE send_id = %s AND subscriber_id %% 200 = 0""",
                [send],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)


def _report(label: str, times: list[float]) -> None:
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    print(
        f"{label}: median {statistics.median(times) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms over {len(times)}"
    )


def time_pages(*, pages=PAGES, requests: int = REQUESTS) -> dict[str, list[float]]:
    """Time each page for a signed-in superuser; return the sorted times by page."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench-author", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    results = {}
    for url in pages:
        assert client.get(url).status_code == 200, url  # warm, and checked
        results[url] = _timed(lambda url=url: client.get(url), requests)
    return results


def main() -> None:
    recreate_database(DB_NAME)
    _setup()
    start = time.perf_counter()
    seed_publication()
    print(
        f"set up {SUBSCRIBERS:,} subscribers, {MEMBERS:,} memberships and "
        f"{ISSUES} sends of {SUBSCRIBERS:,} deliveries "
        f"in {time.perf_counter() - start:.1f} s"
    )
    from issues.dashboard import rollup
    from issues.dashboard.models import DailyGrowth

    start = time.perf_counter()
    rollup.refresh_figures()
    print(
        f"daily figures filled from nothing: {DailyGrowth.objects.count():,} days "
        f"in {(time.perf_counter() - start) * 1000:.0f} ms"
    )
    _report("beat's refresh (today and yesterday)", _timed(rollup.refresh_figures, 10))
    for url, times in time_pages().items():
        _report(url, times)


if __name__ == "__main__":
    main()
