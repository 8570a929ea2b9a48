"""The dashboard (the admin's index) and the growth page, with its CSV.

Both read only the daily figures and a few indexed rows (issues/dashboard/home.py);
the figures reach the charts as JSON (json_script), never as inline code.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse

from subscribers.billing.money import factor, format_amount
from subscribers.exporting import neutralise_formula

from . import series as series_module
from .home import home
from .series import LABELS, RANGES, Series, growth_series, revenue_series

GROWTH_PERMISSION = "dashboard.view_growth"
SENDS_PERMISSION = "sending.view_send"
# Opens, clicks and unsubscribes are the issue report's figures.
REPORT_PERMISSION = "analytics.view_report"

# The charts of the growth page: id, title, series names, and which data (growth or
# revenue); "money" charts show the smallest unit as the currency's main unit.
GROWTH_CHARTS = [
    ("subscribers", "Subscribers", ["subscribers"]),
    ("flows", "New, confirmed and left", ["new", "confirmed", "unsubscribed"]),
    ("net", "Net growth", ["net"]),
    (
        "sources",
        "New subscribers by source",
        ["new_form", "new_import", "new_admin", "new_checkout"],
    ),
]
REVENUE_CHARTS = [
    ("paid", "Paid members", ["paid_members"]),
    ("mrr", "Monthly recurring revenue", ["mrr"]),
    ("churn", "Churn", ["churned", "churn_rate"]),
]


def _chart(
    chart_id: str,
    title: str,
    names: list[str],
    data: Series,
    *,
    kind="line",
    money: str = "",
) -> dict[str, Any]:
    unit = factor(money) if money else 1
    datasets = [
        {
            "key": name,
            "label": LABELS[name],
            "values": [value / unit for value in data.values[name]],
        }
        for name in names
    ]
    return {
        "id": chart_id,
        "title": title,
        "kind": kind,
        "labels": data.labels,
        "datasets": datasets,
        "currency": money.upper(),
        # The same figures as a table, for screen readers and for reading exactly.
        "rows": [
            [label]
            + [
                format_amount(int(data.values[name][n]), money)
                if money and name == "mrr"
                else _plain(data.values[name][n])
                for name in names
            ]
            for n, label in enumerate(data.labels)
        ],
    }


def _plain(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(request: HttpRequest) -> str:
    key = request.GET.get("range", series_module.DEFAULT_RANGE)
    return key if key in RANGES else series_module.DEFAULT_RANGE


def _currency(request: HttpRequest) -> str:
    currencies = series_module.revenue_currencies()
    wanted = request.GET.get("currency", "")
    if wanted in currencies:
        return wanted
    return currencies[0] if currencies else ""


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Add the author's dashboard to the admin index's context (UNFOLD setting)."""
    user = request.user
    context["dashboard"] = (
        home(engagement=user.has_perm(REPORT_PERMISSION))
        if user.has_perm(SENDS_PERMISSION)
        else None
    )
    if user.has_perm(GROWTH_PERMISSION):
        growth = growth_series("30d")
        charts = [
            _chart(
                "spark-subscribers",
                "Subscribers, last 30 days",
                ["subscribers"],
                growth,
            )
        ]
        currency = _currency(request)
        if currency:
            revenue = revenue_series("30d", currency=currency)
            charts.append(
                _chart(
                    "spark-mrr",
                    "Monthly recurring revenue, last 30 days",
                    ["mrr"],
                    revenue,
                    money=currency,
                )
            )
            context["mrr_now"] = format_amount(int(revenue.last("mrr")), currency)
            context["paid_now"] = int(revenue.last("paid_members"))
        context["sparklines"] = charts
        context["subscribers_now"] = int(growth.last("subscribers"))
        context["net_30_days"] = int(growth.total("net"))
    return context


def _require_growth(request: HttpRequest) -> None:
    if not request.user.has_perm(GROWTH_PERMISSION):
        raise PermissionDenied


def growth_view(request: HttpRequest) -> TemplateResponse:
    """Show subscribers, paid members, MRR and churn over a range, as charts."""
    _require_growth(request)
    key = _range(request)
    growth = growth_series(key)
    charts = [
        _chart(
            chart_id,
            title,
            names,
            growth,
            kind="bar" if chart_id == "sources" else "line",
        )
        for chart_id, title, names in GROWTH_CHARTS
    ]
    currency = _currency(request)
    if currency:
        revenue = revenue_series(key, currency=currency)
        charts += [
            _chart(
                chart_id,
                f"{title} ({currency.upper()})" if chart_id == "mrr" else title,
                names,
                revenue,
                money=currency if chart_id == "mrr" else "",
            )
            for chart_id, title, names in REVENUE_CHARTS
        ]
    context = {
        **admin.site.each_context(request),
        "title": "Growth and revenue",
        "range": key,
        "ranges": RANGES.items(),
        "currency": currency,
        "currencies": series_module.revenue_currencies(),
        "charts": charts,
        "has_data": bool(growth.periods)
        and (growth.last("subscribers") or growth.total("new")),
    }
    return TemplateResponse(request, "admin/dashboard/growth.html", context)


def _csv_lines(rows: list[list[Any]]) -> Iterator[str]:
    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())
    for row in rows:
        yield writer.writerow([neutralise_formula(str(value)) for value in row])


def growth_csv(request: HttpRequest, what: str) -> StreamingHttpResponse:
    """Return every series of the range as CSV: growth, or revenue per currency."""
    _require_growth(request)
    key = _range(request)
    if what == "growth":
        data = growth_series(key)
        names = [
            "new",
            "new_form",
            "new_import",
            "new_admin",
            "new_checkout",
            "confirmed",
            "unsubscribed",
            "net",
            "subscribers",
        ]
        rows: list[list[Any]] = [["period", *names]]
        rows += [
            [label, *(data.values[name][n] for name in names)]
            for n, label in enumerate(data.labels)
        ]
    else:
        names = ["paid_members", "mrr", "new_paid", "churned", "churn_rate"]
        # MRR in the currency's smallest unit (cents), as Quire keeps amounts.
        rows = [["period", "currency", "paid_members", "mrr_minor_units", *names[2:]]]
        for currency in series_module.revenue_currencies():
            data = revenue_series(key, currency=currency)
            rows += [
                [label, currency, *(data.values[name][n] for name in names)]
                for n, label in enumerate(data.labels)
            ]
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="quire-{what}-{key}.csv"'
    return response
