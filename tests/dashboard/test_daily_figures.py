"""The daily figures: exact per day, across day boundaries and time zones."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from issues.dashboard import rollup
from issues.dashboard.models import DailyGrowth, DailyRevenue
from issues.dashboard.series import growth_series, revenue_series
from subscribers import services
from subscribers.billing.models import Membership
from subscribers.models import Subscriber, Suppression
from tests.factories.billing import MembershipFactory
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 10)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def subscriber(*, created, confirmed=None, unsubscribed=None, source="form", **fields):
    """A subscriber whose dates are set as given (created is auto_now_add)."""
    factory = SubscriberFactory if confirmed else PendingSubscriberFactory
    made = factory(source=source, **fields)
    status = Subscriber.Status.UNSUBSCRIBED if unsubscribed else made.status
    Subscriber.objects.filter(pk=made.pk).update(
        created=created,
        confirmed_at=confirmed,
        unsubscribed_at=unsubscribed,
        status=status,
    )
    return made


def member(*, created, amount, interval="month", canceled=None, **fields):
    made = MembershipFactory(
        status=Membership.Status.CANCELED if canceled else Membership.Status.ACTIVE,
        stripe_subscription_id=f"sub_{amount}_{created:%d%H}",
        amount=amount,
        currency="usd",
        interval=interval,
        **fields,
    )
    Membership.objects.filter(pk=made.pk).update(created=created, canceled_at=canceled)
    return made


def test_a_day_counts_new_by_source_confirmed_unsubscribed_and_the_total(settings):
    settings.TIME_ZONE = "UTC"
    # Created the evening before, confirmed just after midnight.
    subscriber(created=at(DAY - timedelta(days=1), 23, 30), confirmed=at(DAY, 0, 10))
    subscriber(created=at(DAY, 12), confirmed=at(DAY, 12), source="import")
    subscriber(created=at(DAY, 23, 59), source="admin")  # pending at the day's end
    subscriber(
        created=at(DAY - timedelta(days=5), 9),
        confirmed=at(DAY - timedelta(days=5), 9),
        unsubscribed=at(DAY, 8),
        source="checkout",
    )

    rollup.fill_days(first=DAY - timedelta(days=6), last=DAY)

    day = DailyGrowth.objects.get(day=DAY)
    assert (day.new, day.new_form, day.new_import, day.new_admin) == (2, 0, 1, 1)
    assert (day.confirmed, day.unsubscribed, day.net, day.subscribers) == (2, 1, 1, 2)
    before = DailyGrowth.objects.get(day=DAY - timedelta(days=1))
    assert (before.new, before.new_form, before.confirmed, before.subscribers) == (
        1,
        1,
        0,
        1,
    )
    first = DailyGrowth.objects.get(day=DAY - timedelta(days=5))
    assert (first.new_checkout, first.confirmed, first.subscribers) == (1, 1, 1)
    assert DailyGrowth.objects.count() == 7


def test_days_are_the_publication_time_zone_s_days(settings):
    # 03:00 UTC on 10 March is 23:00 on 9 March in New York (EDT, UTC-4).
    subscriber(created=at(DAY, 3), confirmed=at(DAY, 3))

    settings.TIME_ZONE = "America/New_York"
    rollup.fill_days(first=DAY - timedelta(days=1), last=DAY)
    rows = dict(DailyGrowth.objects.values_list("day", "new"))
    assert rows == {DAY - timedelta(days=1): 1, DAY: 0}

    settings.TIME_ZONE = "UTC"
    rollup.fill_days(first=DAY - timedelta(days=1), last=DAY)
    rows = dict(DailyGrowth.objects.values_list("day", "new"))
    assert rows == {DAY - timedelta(days=1): 0, DAY: 1}


def test_paid_members_and_monthly_revenue_count_a_yearly_plan_as_a_twelfth(settings):
    settings.TIME_ZONE = "UTC"
    member(created=at(DAY - timedelta(days=3), 10), amount=800)
    member(created=at(DAY - timedelta(days=2), 10), amount=12000, interval="year")
    member(
        created=at(DAY - timedelta(days=10), 10),
        amount=500,
        canceled=at(DAY - timedelta(days=1), 15),
    )
    # Neither complimentary access nor a checkout never paid is a paid member.
    MembershipFactory(complimentary=True)
    MembershipFactory(
        status=Membership.Status.INCOMPLETE,
        stripe_subscription_id="sub_incomplete",
        amount=900,
        currency="usd",
        interval="month",
    )

    rollup.fill_days(first=DAY - timedelta(days=4), last=DAY)

    def row(day):
        r = DailyRevenue.objects.get(day=day, currency="usd")
        return r.paid_members, r.mrr, r.new_paid, r.churned

    assert row(DAY - timedelta(days=4)) == (1, 500, 0, 0)
    assert row(DAY - timedelta(days=3)) == (2, 1300, 1, 0)
    assert row(DAY - timedelta(days=2)) == (3, 2300, 1, 0)
    assert row(DAY - timedelta(days=1)) == (2, 1800, 0, 1)
    assert row(DAY) == (2, 1800, 0, 0)


def test_filling_takes_the_same_queries_for_three_subscribers_or_thirty(settings):
    settings.TIME_ZONE = "UTC"

    def queries(count: int) -> int:
        Subscriber.objects.all().delete()
        for n in range(count):
            subscriber(created=at(DAY, n % 24), confirmed=at(DAY, n % 24))
        with CaptureQueriesContext(connection) as captured:
            rollup.fill_days(first=DAY - timedelta(days=30), last=DAY)
        return len(captured)

    assert queries(3) == queries(30)
    assert DailyGrowth.objects.get(day=DAY).new == 30


def test_refreshing_brings_today_up_to_date_and_fills_missing_days(settings):
    settings.TIME_ZONE = "UTC"
    subscriber(created=at(DAY - timedelta(days=3), 9), confirmed=at(DAY, 1))
    assert rollup.refresh_figures(today=DAY) == 4  # a first run: from the first day
    assert DailyGrowth.objects.get(day=DAY).subscribers == 1

    subscriber(created=at(DAY, 9), confirmed=at(DAY, 9))
    assert rollup.refresh_figures(today=DAY) == 2  # yesterday and today again
    assert DailyGrowth.objects.get(day=DAY).subscribers == 2

    later = DAY + timedelta(days=3)
    assert rollup.refresh_figures(today=later) == 4  # the days since, and today
    assert DailyGrowth.objects.get(day=later).subscribers == 2


def test_series_by_month_sum_flows_and_keep_the_month_s_last_total(settings):
    settings.TIME_ZONE = "UTC"
    jan = date(2026, 1, 15)
    subscriber(created=at(jan, 9), confirmed=at(jan, 9))
    subscriber(created=at(jan, 10), confirmed=at(jan, 10), unsubscribed=at(DAY, 9))
    subscriber(created=at(DAY, 11), confirmed=at(DAY, 11))
    member(created=at(jan, 12), amount=1000)
    member(created=at(DAY, 12), amount=2400, interval="year", canceled=None)
    rollup.fill_days(first=date(2025, 12, 1), last=DAY)

    months = growth_series("12m", today=DAY)
    assert months.labels[0] == "2025-04" and months.labels[-1] == "2026-03"
    by_month = dict(zip(months.labels, months.values["subscribers"], strict=True))
    assert by_month["2025-12"] == 0 and by_month["2026-01"] == 2
    assert by_month["2026-02"] == 2 and by_month["2026-03"] == 2
    new = dict(zip(months.labels, months.values["new"], strict=True))
    assert (new["2026-01"], new["2026-02"], new["2026-03"]) == (2, 0, 1)
    net = dict(zip(months.labels, months.values["net"], strict=True))
    assert net["2026-03"] == 0  # one confirmed, one left

    days = growth_series("30d", today=DAY)
    assert len(days.labels) == 30 and days.labels[-1] == "2026-03-10"
    assert days.values["subscribers"][0] == 2  # 9 February: carried from January

    everything = growth_series("all", today=DAY)
    assert everything.labels[0] == "2025-12"

    revenue = revenue_series("12m", currency="usd", today=DAY)
    mrr = dict(zip(revenue.labels, revenue.values["mrr"], strict=True))
    assert (mrr["2026-01"], mrr["2026-02"], mrr["2026-03"]) == (1000, 1000, 1200)
    members = dict(zip(revenue.labels, revenue.values["paid_members"], strict=True))
    assert members["2026-03"] == 2


def test_churn_is_members_lost_over_those_the_period_had(settings):
    settings.TIME_ZONE = "UTC"
    feb = date(2026, 2, 3)
    for n in range(3):
        member(created=at(feb, n), amount=500)
    member(created=at(feb, 5), amount=500, canceled=at(DAY, 9))
    rollup.fill_days(first=feb, last=DAY)
    revenue = revenue_series("12m", currency="usd", today=DAY)
    churn = dict(zip(revenue.labels, revenue.values["churn_rate"], strict=True))
    # March: 4 members at its start, 1 lost.
    assert churn["2026-03"] == 25.0 and churn["2026-02"] == 0


def test_a_bounce_or_a_complaint_counts_as_leaving_on_its_day(settings):
    settings.TIME_ZONE = "UTC"
    january = date(2026, 1, 15)
    for name in ("stays", "bounces", "complains"):
        subscriber(
            created=at(january, 9),
            confirmed=at(january, 9),
            email=f"{name}@example.org",
        )
    # Unsubscribed earlier, then bounced: they left once, on the first day.
    early = subscriber(
        created=at(january, 9),
        confirmed=at(january, 9),
        unsubscribed=at(date(2026, 1, 20), 9),
    )

    services.suppress_address(
        email="bounces@example.org", reason="bounced", now=at(DAY, 10)
    )
    services.suppress_address(
        email="complains@example.org", reason="complained", now=at(DAY, 11)
    )
    services.suppress_address(email=early.email, reason="bounced", now=at(DAY, 12))
    rollup.fill_days(first=january, last=DAY + timedelta(days=1))

    day = DailyGrowth.objects.get(day=DAY)
    assert (day.unsubscribed, day.subscribers) == (2, 1)
    assert DailyGrowth.objects.get(day=date(2026, 1, 20)).unsubscribed == 1
    assert DailyGrowth.objects.get(day=DAY + timedelta(days=1)).subscribers == 1
    series = growth_series("30d", today=DAY)
    assert series.values["unsubscribed"][-1] == 2
    assert series.last("subscribers") == 1


def test_the_migration_dates_subscribers_taken_off_before_it_by_their_suppression():
    from importlib import import_module

    from django.apps import apps

    migration = import_module(
        "subscribers.migrations.0007_left_at_for_bounces_and_complaints"
    )
    made = subscriber(created=at(DAY, 9), confirmed=at(DAY, 9))
    suppression = Suppression.objects.create(
        email_hash=Subscriber.objects.get(pk=made.pk).email_hash, reason="complained"
    )
    Suppression.objects.filter(pk=suppression.pk).update(created=at(DAY, 15))
    Subscriber.objects.filter(pk=made.pk).update(status="complained")
    unsubscribed = subscriber(
        created=at(DAY, 9), confirmed=at(DAY, 9), unsubscribed=at(DAY, 10)
    )

    migration.date_the_ones_taken_off(apps, None)

    assert Subscriber.objects.get(pk=made.pk).unsubscribed_at == at(DAY, 15)
    assert Subscriber.objects.get(pk=unsubscribed.pk).unsubscribed_at == at(DAY, 10)
