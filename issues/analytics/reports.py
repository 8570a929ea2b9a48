"""How an issue did, and which papers readers clicked: read from the daily figures.

Every function here reads the pre-aggregated tables (a few rows per issue per day,
the first 72 hours, the links) and the Send's own counts; none scans events, so a
report costs the same for 100 recipients as for 100,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from issues.models import Issue, Paper
from issues.sending.models import Delivery, Send
from subscribers.billing.models import Membership
from subscribers.models import Subscriber

from .models import DailyIssueStat, DailyLinkStat, DailyPageStat, HourlyIssueStat

HOURS = 72
_SUMMED = [
    "bounced",
    "complaints",
    "opens",
    "unique_opens",
    "machine_opens",
    "clicks",
    "unique_clicks",
    "machine_clicks",
    "unsubscribes",
    "web_views",
    "web_visitors",
]


@dataclass
class LinkFigures:
    url: str
    paper: str
    clicks: int
    unique_clicks: int


@dataclass
class PaperFigures:
    paper_id: int
    title: str
    slug: str
    clicks: int
    unique_clicks: int


@dataclass
class HourFigures:
    hour: int  # hours since sending started
    unique_opens: int
    unique_clicks: int
    machine: int


@dataclass
class IssueReport:
    """An issue's figures: people only, except the machine_* ones."""

    issue_id: int
    title: str
    sent_at: datetime | None
    recipients: int = 0
    delivered: int = 0
    bounced: int = 0
    complaints: int = 0
    opens: int = 0
    unique_opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    unique_clicks: int = 0
    machine_clicks: int = 0
    unsubscribes: int = 0
    web_views: int = 0
    web_visitors: int = 0
    new_free: int = 0
    new_paid: int = 0
    # Welcome steps only (None for an issue): who got it and later paid.
    conversions: int | None = None
    links: list[LinkFigures] = field(default_factory=list)
    papers: list[PaperFigures] = field(default_factory=list)
    referrers: list[tuple[str, int]] = field(default_factory=list)
    hourly: list[HourFigures] = field(default_factory=list)

    @property
    def open_rate(self) -> float:
        """Unique human opens per delivered email (0 to 1)."""
        return self.unique_opens / self.delivered if self.delivered else 0.0

    @property
    def click_rate(self) -> float:
        """Unique human clickers per delivered email (0 to 1)."""
        return self.unique_clicks / self.delivered if self.delivered else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.delivered if self.delivered else 0.0

    @property
    def unsubscribe_rate(self) -> float:
        return self.unsubscribes / self.delivered if self.delivered else 0.0


def issue_report(issue: Issue) -> IssueReport:
    """Return the issue's report from its daily, hourly and link figures."""
    send = Send.objects.filter(issue=issue).first()
    report = IssueReport(
        issue_id=issue.pk,
        title=issue.title,
        sent_at=send.started_at if send else None,
    )
    totals = DailyIssueStat.objects.filter(issue=issue).aggregate(
        **{name: Sum(name) for name in _SUMMED}
    )
    for name in _SUMMED:
        setattr(report, name, totals[name] or 0)
    if send is not None:
        report.recipients = send.total
        # The provider's bounces arrive as events; Quire's own SMTP refusals are
        # on the send. Whichever knows more.
        report.bounced = max(report.bounced, send.bounced_count)
        report.delivered = max(send.sent_count - report.bounced, 0)
    path = issue.get_absolute_url()
    signups = Subscriber.objects.filter(
        consent_source__in=[f"form:{path}", f"checkout:{path}"]
    ).aggregate(
        free=Count("pk", filter=Q(consent_source=f"form:{path}")),
        paid=Count("pk", filter=Q(consent_source=f"checkout:{path}")),
    )
    report.new_free, report.new_paid = signups["free"], signups["paid"]
    if issue.kind == Issue.Kind.WELCOME:
        report.conversions = conversions_to_paid([issue.pk])[issue.pk]
    links = (
        DailyLinkStat.objects.filter(link__issue=issue)
        .values(
            "link__url", "link__paper_id", "link__paper__title", "link__paper__slug"
        )
        .annotate(clicks=Sum("clicks"), unique=Sum("unique_clicks"))
        .order_by("-unique", "-clicks", "link__url")
    )
    papers: dict[int, PaperFigures] = {}
    for row in links:
        report.links.append(
            LinkFigures(
                row["link__url"], row["link__paper__title"] or "", row["clicks"],
                row["unique"],
            )
        )  # fmt: skip
        paper_id = row["link__paper_id"]
        if paper_id is not None:
            figures = papers.setdefault(
                paper_id,
                PaperFigures(
                    paper_id, row["link__paper__title"], row["link__paper__slug"], 0, 0
                ),
            )
            figures.clicks += row["clicks"]
            figures.unique_clicks += row["unique"]
    report.papers = sorted(papers.values(), key=lambda p: (-p.unique_clicks, p.title))
    report.referrers = [
        (row["referrer"], row["n"])
        for row in DailyPageStat.objects.filter(page=f"issue:{issue.pk}")
        .exclude(referrer="")
        .values("referrer")
        .annotate(n=Sum("views"))
        .order_by("-n", "referrer")[:20]
    ]
    if report.sent_at is not None:
        start = report.sent_at.replace(minute=0, second=0, microsecond=0)
        rows = {
            row.hour: row
            for row in HourlyIssueStat.objects.filter(
                issue=issue, hour__gte=start, hour__lt=start + timedelta(hours=HOURS)
            )
        }
        for n in range(HOURS):
            row = rows.get(start + timedelta(hours=n))
            report.hourly.append(
                HourFigures(
                    n,
                    row.unique_opens if row else 0,
                    row.unique_clicks if row else 0,
                    row.machine if row else 0,
                )
            )
    return report


# The series of the first hours' chart: the figure of HourFigures, its label.
HOURLY_SERIES = [
    ("unique_opens", "People who opened"),
    ("unique_clicks", "People who clicked"),
    ("machine", "Machines"),
]


def hourly_chart(report: IssueReport) -> dict[str, Any] | None:
    """Return the first hours' figures as a chart for templates/admin/_chart.html.

    The same shape as the dashboard's charts (static/js/admin-charts.js draws them):
    labels, one dataset per series, and the figures again as rows of a table.
    """
    if not report.hourly:
        return None
    return {
        "id": "first-hours",
        "title": "People who opened, people who clicked and machines, per hour "
        "since sending started",
        # Bars side by side: each hour's figures are not parts of one whole.
        "kind": "bar",
        "stacked": False,
        "period": "Hour since sending started",
        "labels": [str(hour.hour) for hour in report.hourly],
        "datasets": [
            {
                "key": key,
                "label": label,
                "values": [getattr(hour, key) for hour in report.hourly],
            }
            for key, label in HOURLY_SERIES
        ],
        "currency": "",
        "rows": [
            [str(hour.hour)] + [str(getattr(hour, key)) for key, _ in HOURLY_SERIES]
            for hour in report.hourly
        ],
    }


# What the dashboard shows of each issue next to the send's own counts.
ENGAGEMENT = ["unique_opens", "machine_opens", "unique_clicks", "unsubscribes"]


def engagement(issue_ids: list[int]) -> dict[int, dict[str, int]]:
    """Return each issue's people who opened and clicked, machine opens and
    unsubscribes: one grouped query over the daily figures, whatever the count."""
    rows = (
        DailyIssueStat.objects.filter(issue_id__in=issue_ids)
        .values("issue_id")
        .annotate(**{name: Sum(name) for name in ENGAGEMENT})
        .order_by()
    )
    found: dict[int, dict[str, int]] = {}
    for row in rows:
        values: dict = dict(row)
        found[values["issue_id"]] = {name: values[name] or 0 for name in ENGAGEMENT}
    return {pk: found.get(pk, dict.fromkeys(ENGAGEMENT, 0)) for pk in issue_ids}


def recent_reports(*, count: int = 6) -> tuple[IssueReport | None, dict[str, float]]:
    """Return the last sent issue's report and the average of the ones before.

    The average (over up to count - 1 earlier issues) has the report's counts and
    rates as keys; empty when no earlier issue was sent.
    """
    sends = list(
        Send.objects.filter(started_at__isnull=False)
        .exclude(issue__kind=Issue.Kind.WELCOME)
        .select_related("issue")
        .order_by("-started_at")[:count]
    )
    if not sends:
        return None, {}
    reports = [issue_report(send.issue) for send in sends]
    earlier = reports[1:]
    if not earlier:
        return reports[0], {}
    names = ["delivered", "unique_opens", "unique_clicks", "unsubscribes", *_SUMMED]
    average = {
        name: sum(getattr(r, name) for r in earlier) / len(earlier) for name in names
    }
    for rate in ("open_rate", "click_rate", "complaint_rate", "unsubscribe_rate"):
        average[rate] = sum(getattr(r, rate) for r in earlier) / len(earlier)
    return reports[0], average


def most_read_papers(
    *, issue: Issue | None = None, year: int | None = None, limit: int = 20
) -> list[PaperFigures]:
    """Return the papers readers clicked most (people, unique per email), of one
    issue or of the issues published in a year."""
    rows = DailyLinkStat.objects.filter(link__paper__isnull=False)
    if issue is not None:
        rows = rows.filter(link__issue=issue)
    if year is not None:
        rows = rows.filter(link__issue__published_at__year=year)
    ranked = (
        rows.values("link__paper_id")
        .annotate(clicks=Sum("clicks"), unique=Sum("unique_clicks"))
        .order_by("-unique", "-clicks", "link__paper_id")[:limit]
    )
    titles = Paper.objects.in_bulk([row["link__paper_id"] for row in ranked])
    return [
        PaperFigures(
            row["link__paper_id"],
            titles[row["link__paper_id"]].title,
            titles[row["link__paper_id"]].slug,
            row["clicks"],
            row["unique"],
        )
        for row in ranked
    ]


# Memberships that were paid at some point (the dashboard counts paid members from
# the same statuses); an incomplete checkout never was, complimentary is not paid.
PAID_STATUSES = [
    Membership.Status.ACTIVE,
    Membership.Status.TRIALING,
    Membership.Status.PAST_DUE,
    Membership.Status.CANCELED,
    Membership.Status.UNPAID,
    Membership.Status.PAUSED,
]


def converted_q() -> Q:
    """Return a filter on Delivery: its subscriber started a paid membership after
    the email was sent to them."""
    return Q(
        Exists(
            Membership.objects.filter(
                subscriber=OuterRef("subscriber_id"),
                created__gt=OuterRef("sent_at"),
                status__in=PAID_STATUSES,
                complimentary=False,
            ).exclude(stripe_subscription_id="")
        )
    )


def conversions_to_paid(issue_ids: list[int]) -> dict[int, int]:
    """Return, per issue (a welcome step's), how many who were sent it later
    started a paid membership: one grouped query, whatever the count."""
    rows = (
        Delivery.objects.filter(
            send__issue_id__in=issue_ids,
            status=Delivery.Status.SENT,
            subscriber__isnull=False,
        )
        .filter(converted_q())
        .values("send__issue_id")
        .annotate(n=Count("subscriber_id", distinct=True))
        .order_by()
    )
    found = {row["send__issue_id"]: row["n"] for row in rows}
    return {pk: found.get(pk, 0) for pk in issue_ids}


def conversions_subquery() -> Coalesce:
    """conversions_to_paid as a subquery on a row with an ``issue`` (a welcome
    step), so a list of steps counts them in its one query."""
    converted = (
        Delivery.objects.filter(
            send__issue_id=OuterRef("issue"),
            status=Delivery.Status.SENT,
            subscriber__isnull=False,
        )
        .filter(converted_q())
        .values("send__issue_id")
        .annotate(n=Count("subscriber_id", distinct=True))
        .values("n")
    )
    return Coalesce(Subquery(converted, output_field=IntegerField()), 0)
