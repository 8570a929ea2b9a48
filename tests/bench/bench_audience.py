"""Benchmark: freezing a segment's audience against freezing everyone, same run.

On PostgreSQL, 100,000 active subscribers on the default newsletter, each with one
or two of five labels, a tenth of them paying; six issues sent before, with a
delivery per subscriber each and a human open or click (analytics' Activity) for
about a third of them. Timed: ``freeze_audience`` of an issue to everyone, and of
an issue to a segment (two of the labels, and opened or clicked in the last three
issues), alternately, ROUNDS times each; the median of each and their ratio are
printed. The issue asks for the segment's freeze to take at most 1.5 times
everyone's; the benchmark exits non-zero when it does not.

    make bench BENCH_ARGS=audience      # or: python -m tests.bench.bench_audience

It uses its own throwaway PostgreSQL database (quire_bench_audience). With
BENCH_AUDIENCE_EXPLAIN=1 it also prints the plan of the segment's count.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from tests.bench.support import SERVER, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent.parent
DB_NAME = "quire_bench_audience"
SUBSCRIBERS = int(os.environ.get("BENCH_AUDIENCE_SUBSCRIBERS", "100000"))
ROUNDS = int(os.environ.get("BENCH_AUDIENCE_ROUNDS", "5"))
PAST_ISSUES = 6
LIMIT = 1.5


def seed() -> None:
    """Fill the database, set-based: subscribers, labels, memberships, past sends
    with their deliveries and activity."""
    from django.db import connection
    from django.utils import timezone

    from issues.models import Issue
    from issues.sending.models import Send
    from subscribers.models import Label, Subscriber, Subscription

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO subscribers_subscriber (email, email_hash, name, status, "
            "paused, source, tracking, token, created, consent_user_agent, "
            "consent_source, consent_text_version, confirmation_nonce) "
            "SELECT 'reader' || n || '@bench.example', md5(n::text) || md5('h' || n), "
            "'', 'active', false, "
            "(ARRAY['form', 'form', 'import', 'admin'])[n %% 4 + 1], true, "
            "md5('t' || n) || md5('u' || n), now() - (n %% 700) * interval '1 day', "
            "'', 'bench', '', '' FROM generate_series(1, %s) AS n",
            [SUBSCRIBERS],
        )
    Subscription.join_defaults(Subscriber.objects.values("pk"))
    labels = [Label.objects.create(name=f"label-{n}") for n in range(5)]
    through = Subscriber.labels.through._meta.db_table
    with connection.cursor() as cursor:
        # Everyone has label id % 5; every third subscriber one more.
        for extra, step in ((0, 1), (2, 3)):
            cursor.execute(
                f"INSERT INTO {through} (subscriber_id, label_id) "  # noqa: S608
                "SELECT s.id, (ARRAY[%s, %s, %s, %s, %s])[(s.id + %s) %% 5 + 1] "
                "FROM subscribers_subscriber s WHERE s.id %% %s = 0",
                [*(label.pk for label in labels), extra, step],
            )
        cursor.execute(
            "INSERT INTO billing_membership (subscriber_id, status, "
            "stripe_customer_id, stripe_subscription_id, stripe_price_id, amount, "
            "currency, interval, cancel_at_period_end, complimentary, "
            "last_failed_invoice_attempt, created, updated) "
            "SELECT id, 'active', 'cus_' || id, 'sub_' || id, '', 800, 'usd', "
            "'month', false, false, '', now(), now() "
            "FROM subscribers_subscriber WHERE id % 10 = 0"
        )
    now = timezone.now()
    for n in range(PAST_ISSUES):
        issue = Issue.objects.create(
            title=f"Past issue {n + 1}", slug=f"past-{n + 1}", body="Past.",
            status=Issue.Status.PUBLISHED,
            published_at=now - timezone.timedelta(days=30 * (PAST_ISSUES - n)),
        )  # fmt: skip
        send = Send.objects.create(
            issue=issue, status=Send.Status.DONE, total=SUBSCRIBERS,
            started_at=issue.published_at, finished_at=issue.published_at,
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO sending_delivery (send_id, subscriber_id, email, "
                "segment, status, attempts, last_error, message_id, claimed_by, "
                "possibly_duplicate, crashes) "
                "SELECT %s, id, email, 'free', 'sent', 1, '', '', '', false, 0 "
                "FROM subscribers_subscriber",
                [send.pk],
            )
            # A third open or click, each issue a different third (and some
            # machines only, which do not count).
            cursor.execute(
                "INSERT INTO analytics_activity (delivery_id, issue_id, "
                "first_human_open, first_machine_open, first_human_click, "
                "first_machine_click, links) "
                "SELECT d.id, %s, CASE WHEN d.subscriber_id %% 7 <> 0 THEN now() END, "
                "CASE WHEN d.subscriber_id %% 7 = 0 THEN now() END, "
                "CASE WHEN d.subscriber_id %% 2 = 0 THEN now() END, NULL, '[]' "
                "FROM sending_delivery d WHERE d.send_id = %s "
                "AND (d.subscriber_id + %s) %% 3 = 0",
                [issue.pk, send.pk, n],
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def main() -> int:
    var_dir = ROOT / "var" / "bench-audience"
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
    from django.core.management import call_command
    from django.db import connection, connections

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    seed()
    print(f"seeded {SUBSCRIBERS} subscribers, {PAST_ISSUES} past sends with their "
          f"activity in {time.perf_counter() - start:.1f} s")  # fmt: skip

    from issues.models import Issue
    from issues.sending import delivery
    from issues.sending.models import Delivery, Send
    from subscribers.models import Label, Segment
    from subscribers.segments import segment_count

    segment = Segment.objects.create(name="Engaged readers of two labels",
                                     engaged_in_last=3)  # fmt: skip
    segment.labels.set(Label.objects.filter(name__in=["label-1", "label-3"]))
    everyone = Issue.objects.create(title="To everyone", slug="everyone", body="x")
    targeted = Issue.objects.create(
        title="To the segment", slug="segment", body="x",
        audience=Issue.Audience.SEGMENT, segment=segment,
    )  # fmt: skip

    def freeze(issue) -> tuple[float, int]:
        send = Send.objects.create(issue=issue)
        began = time.perf_counter()
        total = delivery.freeze_audience(send=send)
        took = time.perf_counter() - began
        # Undone outside the timing, so each round starts alike (and the send
        # does not become "the last issue sent" for the engagement condition).
        Delivery.objects.filter(send=send).delete()
        send.delete()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE sending_delivery")
        return took, total

    freeze(everyone)  # warm up
    times: dict[str, list[float]] = {"everyone": [], "segment": []}
    totals = {}
    for _ in range(ROUNDS):
        for name, issue in (("everyone", everyone), ("segment", targeted)):
            took, totals[name] = freeze(issue)
            times[name].append(took)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["segment"] / medians["everyone"]
    print(f"segment: labels label-1 or label-3, opened or clicked in the last 3 "
          f"issues; matches {segment_count(segment)} now")  # fmt: skip
    for name in ("everyone", "segment"):
        print(f"freeze {name:<8}: {medians[name] * 1000:8.1f} ms median of {ROUNDS} "
              f"({totals[name]} deliveries; runs "
              f"{', '.join(f'{t * 1000:.0f}' for t in times[name])} ms)")  # fmt: skip
    verdict = "within" if ratio <= LIMIT else "OVER"
    print(f"ratio segment / everyone: {ratio:.2f} ({verdict} the {LIMIT}x limit)")
    if os.environ.get("BENCH_AUDIENCE_EXPLAIN"):
        from issues.sending.delivery.audience import audience

        query = audience(Issue.objects.get(pk=targeted.pk))
        print(query.order_by().values("pk").explain(analyze=True))
    print(f"cores: {os.cpu_count()}; load average: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    connections.close_all()
    drop_database(DB_NAME)
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
