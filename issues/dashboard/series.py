"""Growth and revenue over a range, read from the daily figures alone.

Thirty days are shown day by day; twelve months and all time month by month, flows
summed over the month and stocks (subscribers, paid members, MRR) as at its last day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from .models import DailyGrowth, DailyRevenue
from .rollup import local_today

RANGES = {"30d": "Last 30 days", "12m": "Last 12 months", "all": "All time"}
DEFAULT_RANGE = "30d"

GROWTH_FLOWS = [
    "new",
    "new_form",
    "new_import",
    "new_admin",
    "new_checkout",
    "confirmed",
    "unsubscribed",
]
GROWTH_STOCKS = ["subscribers"]
REVENUE_FLOWS = ["new_paid", "churned"]
REVENUE_STOCKS = ["paid_members", "mrr"]

LABELS = {
    "new": "New",
    "new_form": "New from the signup form",
    "new_import": "New from imports",
    "new_admin": "New, added in the admin",
    "new_checkout": "New from paid checkout",
    "confirmed": "Confirmed",
    "unsubscribed": "Left (unsubscribed, bounced or complained)",
    "net": "Net (confirmed less those who left)",
    "subscribers": "Subscribers",
    "paid_members": "Paid members",
    "mrr": "Monthly recurring revenue",
    "new_paid": "New paid members",
    "churned": "Paid members lost",
    "churn_rate": "Churn (%)",
}


@dataclass
class Series:
    """Values per period: labels[i] is the period of every values[name][i]."""

    periods: list[date] = field(default_factory=list)
    monthly: bool = False
    values: dict[str, list[float]] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        fmt = "%Y-%m" if self.monthly else "%Y-%m-%d"
        return [period.strftime(fmt) for period in self.periods]

    def last(self, name: str) -> float:
        column = self.values.get(name) or [0]
        return column[-1]

    def total(self, name: str) -> float:
        return sum(self.values.get(name) or [0])


def range_bounds(key: str, *, today: date | None = None) -> tuple[date | None, date]:
    """Return the first day (None: from the beginning) and the last of a range."""
    today = today or local_today()
    if key == "30d":
        return today - timedelta(days=29), today
    if key == "12m":
        # This month and the eleven before it.
        if today.month == 12:
            first = date(today.year, 1, 1)
        else:
            first = date(today.year - 1, today.month + 1, 1)
        return first, today
    return None, today


def _periods(first: date, last: date, monthly: bool) -> list[date]:
    if not monthly:
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def _bucket(day: date, monthly: bool) -> date:
    return day.replace(day=1) if monthly else day


def _collect(rows, first, last, monthly, flows, stocks, start_stock):
    periods = _periods(first, last, monthly)
    index = {period: n for n, period in enumerate(periods)}
    values: dict[str, list[float]] = {name: [0] * len(periods) for name in flows}
    seen = [False] * len(periods)
    for name in stocks:
        values[name] = [0] * len(periods)
    for row in rows:
        n = index[_bucket(row.day, monthly)]
        for name in flows:
            values[name][n] += getattr(row, name)
        for name in stocks:
            # Rows come by day: the last one of a period is its stock.
            values[name][n] = getattr(row, name)
        seen[n] = True
    # A period without a row keeps the stock of the one before.
    for name in stocks:
        previous = start_stock.get(name, 0)
        for n in range(len(periods)):
            if seen[n]:
                previous = values[name][n]
            else:
                values[name][n] = previous
    return periods, values


def growth_series(key: str = DEFAULT_RANGE, *, today: date | None = None) -> Series:
    """Return subscribers over the range: new (by source), confirmed, left, net."""
    first, last = range_bounds(key, today=today)
    monthly = key != "30d"
    rows = DailyGrowth.objects.filter(day__lte=last).order_by("day")
    if first is None:
        first = rows.values_list("day", flat=True).first() or last
    before = DailyGrowth.objects.filter(day__lt=first).order_by("-day").first()
    start_stock = {"subscribers": before.subscribers} if before else {}
    periods, values = _collect(
        rows.filter(day__gte=first),
        first,
        last,
        monthly,
        GROWTH_FLOWS,
        GROWTH_STOCKS,
        start_stock,
    )
    values["net"] = [
        c - u for c, u in zip(values["confirmed"], values["unsubscribed"], strict=True)
    ]
    return Series(periods=periods, monthly=monthly, values=values)


def revenue_currencies() -> list[str]:
    """Return the currencies with revenue figures, the one with most members first."""
    newest = DailyRevenue.objects.order_by("-day").values_list("day", flat=True).first()
    if newest is None:
        return []
    rows = DailyRevenue.objects.filter(day=newest).order_by("-paid_members", "currency")
    return list(rows.values_list("currency", flat=True))


def revenue_series(
    key: str = DEFAULT_RANGE, *, currency: str, today: date | None = None
) -> Series:
    """Return paid members, MRR (smallest unit), starts, losses and churn."""
    first, last = range_bounds(key, today=today)
    monthly = key != "30d"
    rows = DailyRevenue.objects.filter(currency=currency, day__lte=last).order_by("day")
    if first is None:
        first = rows.values_list("day", flat=True).first() or last
    before = rows.filter(day__lt=first).order_by("-day").first()
    start_stock = (
        {"paid_members": before.paid_members, "mrr": before.mrr} if before else {}
    )
    periods, values = _collect(
        rows.filter(day__gte=first),
        first,
        last,
        monthly,
        REVENUE_FLOWS,
        REVENUE_STOCKS,
        start_stock,
    )
    # Churn of a period: members lost in it over those it had (at its start and
    # joined during it), so a member who came and went in the period counts once.
    churn = []
    at_start = start_stock.get("paid_members", 0)
    for n in range(len(periods)):
        base = at_start + values["new_paid"][n]
        churn.append(round(100 * values["churned"][n] / base, 2) if base else 0)
        at_start = values["paid_members"][n]
    values["churn_rate"] = churn
    return Series(periods=periods, monthly=monthly, values=values)
