"""Paid tiers at scale: the paid/free audience split and the Stripe webhook.

Run: `make bench BENCH_ARGS=billing` (or `python -m tests.bench.bench_billing`).

Sets up a throwaway PostgreSQL database, quire_bench_billing, on BENCH_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432), with 100,000 subscribers of whom 10,000
have a membership (active, trialing, past due inside and outside the grace period,
canceled, complimentary). Measures:

- counting the paid segment with issues.access.paid_subscribers_q() (what sending
  does when it freezes an audience), and checking it against Membership.has_paid_access
  row by row;
- the webhook: median and p95 time to verify, store and queue a signed event, and to
  answer a duplicate delivery (the broker is the filesystem one, in var/).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from tests.bench.support import SERVER, recreate_database

DB_NAME = "quire_bench_billing"
ROOT = Path(__file__).resolve().parent.parent.parent
VAR = ROOT / "var" / "bench-billing"
SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "100000"))
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "10000"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "300"))
SECRET = "whsec_bench"


def _setup() -> None:
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{DB_NAME}",
            "DEBUG": "true",
            "QUIRE_VAR_DIR": str(VAR),
            "CELERY_BROKER_URL": "filesystem://localhost//",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "STRIPE_SECRET_KEY": "sk_bench",
            "STRIPE_PUBLISHABLE_KEY": "pk_bench",
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _populate() -> None:
    from django.utils import timezone

    from subscribers.billing.models import Membership
    from subscribers.models import Subscriber, Subscription, hash_email, new_token

    rows = []
    for n in range(SUBSCRIBERS):
        email = f"reader{n}@example.org"
        rows.append(
            Subscriber(
                email=email,
                email_hash=hash_email(email),
                token=new_token(),
                status=Subscriber.Status.ACTIVE,
            )
        )
    Subscriber.objects.bulk_create(rows, batch_size=5000)
    # bulk_create skips save(): they join the default newsletters as a signup does.
    Subscription.join_defaults(Subscriber.objects.values("pk"))
    pks = list(Subscriber.objects.order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    kinds = [
        {"status": "active"},
        {"status": "trialing"},
        {"status": "past_due", "past_due_since": now - timedelta(days=2)},
        {"status": "past_due", "past_due_since": now - timedelta(days=20)},
        {"status": "canceled"},
        {"complimentary": True},
        {"complimentary": True, "complimentary_until": now - timedelta(days=1)},
    ]
    step = max(1, len(pks) // MEMBERS)
    members = [
        Membership(subscriber_id=pk, **kinds[i % len(kinds)])
        for i, pk in enumerate(pks[::step][:MEMBERS])
    ]
    Membership.objects.bulk_create(members, batch_size=5000)


def _timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def _bench_split() -> None:
    from issues.access import paid_subscribers_q
    from subscribers.billing.models import Membership
    from subscribers.models import Subscriber

    receiving = Subscriber.objects.receiving()
    seconds, paid = _timed(lambda: receiving.filter(paid_subscribers_q()).count())
    expected = sum(m.has_paid_access() for m in Membership.objects.all())
    print(
        f"paid segment of {receiving.count():,} subscribers: {paid:,} "
        f"(row-by-row check: {expected:,}) counted in {seconds * 1000:.1f} ms (median)"
    )
    assert paid == expected, "set-based and row-by-row rules disagree"


def _bench_webhook() -> None:
    import stripe
    from django.test import Client

    client = Client()

    def post(event: dict) -> float:
        body = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
        start = time.perf_counter()
        response = client.post(
            "/stripe/webhook/",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": header},
        )
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, response.status_code
        return elapsed

    events = [
        {
            "id": f"evt_bench_{n}",
            "object": "event",
            "type": "customer.subscription.updated",
            "created": int(time.time()),
            "data": {"object": {"id": f"sub_{n}", "object": "subscription"}},
        }
        for n in range(EVENTS)
    ]
    fresh = [post(event) for event in events]
    again = [post(event) for event in events[:100]]
    for label, times in (("new event", fresh), ("duplicate delivery", again)):
        times.sort()
        print(
            f"webhook, {label}: median {statistics.median(times) * 1000:.2f} ms, "
            f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.2f} ms over {len(times)}"
        )


def main() -> None:
    recreate_database(DB_NAME)
    _setup()
    start = time.perf_counter()
    _populate()
    print(
        f"set up {SUBSCRIBERS:,} subscribers and {MEMBERS:,} memberships "
        f"in {time.perf_counter() - start:.1f} s"
    )
    _bench_split()
    _bench_webhook()


if __name__ == "__main__":
    main()
