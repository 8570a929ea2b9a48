"""Filling the daily figures from subscribers and memberships, set-based (GROUP BY day).

A day is a day in the publication's time zone (TIME_ZONE). Flows (new, confirmed,
unsubscribed, paid starts and ends) are counted per day in one grouped query each;
stocks (subscribers, paid members, MRR) are the stock before the first day plus the
running sum of the day's flows, a loop over days, never over subscribers.

Paid members are memberships paid through Stripe (an amount and a subscription; not
complimentary), counted from their creation until they were canceled. A plan
changed mid-way counts at its present amount over its whole life: Quire keeps no
history of amounts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from subscribers.billing.models import Membership, Tier
from subscribers.models import Subscriber

from .models import DailyGrowth, DailyRevenue

SOURCES = [choice.value for choice in Subscriber.Source]
# Memberships that were paid at some point; incomplete checkouts never were.
PAID_STATUSES = [
    Membership.Status.ACTIVE,
    Membership.Status.PAST_DUE,
    Membership.Status.CANCELED,
    Membership.Status.UNPAID,
    Membership.Status.PAUSED,
]
ENDED_STATUSES = [
    Membership.Status.CANCELED,
    Membership.Status.UNPAID,
    Membership.Status.PAUSED,
]


def start_of(day: date) -> datetime:
    """Return the first moment of the day in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def local_today() -> date:
    return timezone.localdate()


def _per_day(queryset, field: str, start: datetime, end: datetime, *extra: str):
    tz = timezone.get_current_timezone()
    return (
        queryset.filter(**{f"{field}__gte": start, f"{field}__lt": end})
        .annotate(day=TruncDate(field, tzinfo=tz))
        .values("day", *extra)
        .annotate(n=Count("pk"))
        .order_by()
    )


def _paid_memberships():
    return Membership.objects.filter(
        status__in=PAID_STATUSES, amount__gt=0, complimentary=False
    ).exclude(stripe_subscription_id="")


def _monthly_amounts(queryset) -> dict[str, dict[str, int]]:
    """Return {currency: {"n": members, "month": cents, "year": cents}}."""
    rows = (
        queryset.values("currency")
        .annotate(
            n=Count("pk"),
            month=Sum("amount", filter=~Q(interval=Tier.Interval.YEAR)),
            year=Sum("amount", filter=Q(interval=Tier.Interval.YEAR)),
        )
        .order_by()
    )
    return {
        row["currency"]: {
            "n": row["n"],
            "month": row["month"] or 0,
            "year": row["year"] or 0,
        }
        for row in rows
    }


def _ended(queryset):
    return queryset.filter(status__in=ENDED_STATUSES, canceled_at__isnull=False)


@transaction.atomic
def fill_days(*, first: date, last: date) -> int:
    """Compute and store the figures of every day from first to last; return days."""
    if last < first:
        return 0
    start, end = start_of(first), start_of(last + timedelta(days=1))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]

    new: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SOURCES, 0))
    for row in _per_day(Subscriber.objects.all(), "created", start, end, "source"):
        new[row["day"]][row["source"]] = row["n"]
    confirmed = {
        row["day"]: row["n"]
        for row in _per_day(Subscriber.objects.all(), "confirmed_at", start, end)
    }
    left_list = Subscriber.objects.filter(confirmed_at__isnull=False)
    unsubscribed = {
        row["day"]: row["n"]
        for row in _per_day(left_list, "unsubscribed_at", start, end)
    }
    total = (
        Subscriber.objects.filter(confirmed_at__lt=start).count()
        - left_list.filter(unsubscribed_at__lt=start).count()
    )
    growth = []
    for day in days:
        total += confirmed.get(day, 0) - unsubscribed.get(day, 0)
        counts = new[day] if day in new else dict.fromkeys(SOURCES, 0)
        growth.append(
            DailyGrowth(
                day=day,
                new=sum(counts.values()),
                new_form=counts.get("form", 0),
                new_import=counts.get("import", 0),
                new_admin=counts.get("admin", 0),
                new_checkout=counts.get("checkout", 0),
                confirmed=confirmed.get(day, 0),
                unsubscribed=unsubscribed.get(day, 0),
                subscribers=max(total, 0),
            )
        )
    DailyGrowth.objects.bulk_create(
        growth,
        update_conflicts=True,
        unique_fields=["day"],
        update_fields=[
            "new",
            "new_form",
            "new_import",
            "new_admin",
            "new_checkout",
            "confirmed",
            "unsubscribed",
            "subscribers",
            "updated",
        ],
    )
    _fill_revenue(days, start, end)
    return len(days)


def _fill_revenue(days: list[date], start: datetime, end: datetime) -> None:
    paid = _paid_memberships()
    # The stock before the first day: started before it, minus ended before it.
    stock = _monthly_amounts(paid.filter(created__lt=start))
    for currency, gone in _monthly_amounts(
        _ended(paid).filter(canceled_at__lt=start)
    ).items():
        base = stock.setdefault(currency, {"n": 0, "month": 0, "year": 0})
        for key in base:
            base[key] -= gone[key]

    tz = timezone.get_current_timezone()

    def flows(queryset, field: str):
        rows = (
            queryset.filter(**{f"{field}__gte": start, f"{field}__lt": end})
            .annotate(day=TruncDate(field, tzinfo=tz))
            .values("day", "currency")
            .annotate(
                n=Count("pk"),
                month=Sum("amount", filter=~Q(interval=Tier.Interval.YEAR)),
                year=Sum("amount", filter=Q(interval=Tier.Interval.YEAR)),
            )
            .order_by()
        )
        return {
            (row["day"], row["currency"]): {
                "n": row["n"],
                "month": row["month"] or 0,
                "year": row["year"] or 0,
            }
            for row in rows
        }

    started = flows(paid, "created")
    ended = flows(_ended(paid), "canceled_at")
    currencies = sorted(set(stock) | {c for _, c in started} | {c for _, c in ended})
    zero = {"n": 0, "month": 0, "year": 0}
    rows = []
    for currency in currencies:
        now = dict(stock.get(currency, zero))
        for day in days:
            plus = started.get((day, currency), zero)
            minus = ended.get((day, currency), zero)
            for key in now:
                now[key] += plus[key] - minus[key]
            rows.append(
                DailyRevenue(
                    day=day,
                    currency=currency,
                    paid_members=max(now["n"], 0),
                    mrr=max(now["month"] + round(now["year"] / 12), 0),
                    new_paid=plus["n"],
                    churned=minus["n"],
                )
            )
    DailyRevenue.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["day", "currency"],
        update_fields=["paid_members", "mrr", "new_paid", "churned", "updated"],
    )


def first_day() -> date | None:
    """Return the day of the oldest subscriber, or None on an empty site."""
    oldest = Subscriber.objects.aggregate(first=Min("created"))["first"]
    return timezone.localdate(oldest) if oldest else None


def refresh_figures(*, today: date | None = None) -> int:
    """Bring the daily figures up to today: yesterday and today again, and any
    day missing since the last filled one (all days on a site's first run)."""
    today = today or local_today()
    newest = DailyGrowth.objects.order_by("-day").values_list("day", flat=True).first()
    if newest is None:
        first = first_day() or today
    else:
        first = min(newest, today - timedelta(days=1))
    return fill_days(first=min(first, today), last=today)


def rebuild_figures(*, today: date | None = None) -> int:
    """Recompute every day from the first subscriber's to today."""
    today = today or local_today()
    DailyGrowth.objects.all().delete()
    DailyRevenue.objects.all().delete()
    return fill_days(first=first_day() or today, last=today)
