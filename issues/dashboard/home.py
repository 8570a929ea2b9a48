"""The author's home: the last issue against the five before, and what needs care.

Every figure here is a handful of indexed queries: the send's own counters, the
provider's bounce and complaint events (few) matched to the send's deliveries by
message id, the analytics' daily figures for opens, clicks and unsubscribes, and the
daily figures for the sparklines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from issues.analytics.reports import engagement
from issues.models import Issue
from issues.sending.guard import Figures, Limits
from issues.sending.guard import percent as rate_shown
from issues.sending.health import paused_by_quire, stalled_sends
from issues.sending.models import Delivery, EmailEvent, Send, WelcomeStep

# Above this share of delivered emails, complaints put the sender's reputation at
# risk (Gmail's and Yahoo's bulk sender rules name 0.1 %; 0.3 % is their limit).
COMPLAINT_RATE_LIMIT = 0.001
PREVIOUS_ISSUES = 5


@dataclass
class Figure:
    key: str
    label: str
    value: float | None
    average: float | None = None
    percent: bool = False

    @property
    def shown(self) -> str:
        return show_figure(self.value, percent=self.percent)

    @property
    def average_shown(self) -> str:
        return show_figure(self.average, percent=self.percent)


def show_figure(value: float | None, *, percent: bool = False) -> str:
    """Return a figure as the dashboard writes it: 1,234, 12.5, 0.12 % or —."""
    if value is None:
        return "—"
    if percent:
        return f"{value * 100:.2f} %"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


# The figures of an issue, in order: key, label, whether it is a rate.
ISSUE_FIGURES = [
    ("recipients", "Recipients", False),
    ("sent", "Accepted by the mail server", False),
    ("delivered", "Delivered", False),
    ("bounced", "Bounced", False),
    ("complaints", "Complaints", False),
    ("complaint_rate", "Complaint rate", True),
    # From here on the analytics' figures (ENGAGED_FIGURES).
    ("unique_opens", "Opened (people)", False),
    ("open_rate", "Open rate", True),
    ("unique_clicks", "Clicked (people)", False),
    ("click_rate", "Click rate", True),
    ("machine_opens", "Machine opens (not counted)", False),
    ("unsubscribes", "Unsubscribed", False),
]
ENGAGED_FIGURES = {
    "unique_opens", "open_rate", "unique_clicks", "click_rate", "machine_opens",
    "unsubscribes",
}  # fmt: skip


def issue_numbers(issue: Issue) -> dict[str, float]:
    """Return the figures of one sent issue, by key (ISSUE_FIGURES): the send's
    counts and the provider's events, with the people who opened and clicked from
    the analytics' daily figures."""
    send = Send.objects.filter(issue=issue).first()
    if send is None:
        return {}
    return _send_numbers([send])[send.pk]


def _send_numbers(sends: list[Send]) -> dict[int, dict[str, float]]:
    # The provider's bounce and complaint events (few) since the oldest of these
    # sends began, each matched to its delivery by message id (an index lookup),
    # rather than the sends' deliveries (one row per recipient) scanned for them.
    since = min((send.started_at for send in sends if send.started_at), default=None)
    events = EmailEvent.objects.filter(event_type__in=["bounced", "complained"])
    if since is not None:
        events = events.filter(timestamp__gte=since - timedelta(days=1))
    delivery = Delivery.objects.filter(message_id=OuterRef("message_id"))
    rows = (
        events.exclude(message_id="")
        .annotate(
            send_pk=Subquery(delivery.values("send_id")[:1]),
            delivery_status=Subquery(delivery.values("status")[:1]),
        )
        .filter(send_pk__in=[send.pk for send in sends])
        .values_list("send_pk", "delivery_status", "message_id", "event_type")
    )
    by_type: dict[tuple[int, str], set[str]] = {}
    for send_pk, status, message_id, kind in rows:
        if kind == "bounced" and status == Delivery.Status.BOUNCED:
            continue  # already counted by the send (refused while sending)
        by_type.setdefault((send_pk, kind), set()).add(message_id)
    engaged = engagement([send.issue_id for send in sends])
    numbers = {}
    for send in sends:
        late_bounces = len(by_type.get((send.pk, "bounced"), ()))
        complaints = len(by_type.get((send.pk, "complained"), ()))
        delivered = max(send.sent_count - late_bounces, 0)
        numbers[send.pk] = {
            "recipients": send.total,
            "sent": send.sent_count,
            "delivered": delivered,
            "bounced": send.bounced_count + late_bounces,
            "complaints": complaints,
            "complaint_rate": complaints / delivered if delivered else 0.0,
        }
        people = engaged[send.issue_id]
        numbers[send.pk].update(people)
        numbers[send.pk]["open_rate"] = (
            people["unique_opens"] / delivered if delivered else 0.0
        )
        numbers[send.pk]["click_rate"] = (
            people["unique_clicks"] / delivered if delivered else 0.0
        )
    return numbers


@dataclass
class IssueComparison:
    issue: Issue
    figures: list[Figure]
    previous_count: int


def last_issue_comparison(*, engagement: bool = True) -> IssueComparison | None:
    """Return the last sent issue's figures next to the average of the five before."""
    sends = list(
        Send.objects.filter(started_at__isnull=False)
        # A welcome step's send goes on for ever: it is no issue to compare.
        .exclude(issue__kind=Issue.Kind.WELCOME)
        .select_related("issue")
        .order_by("-started_at", "-pk")[: PREVIOUS_ISSUES + 1]
    )
    if not sends:
        return None
    numbers = _send_numbers(sends)
    last, previous = sends[0], sends[1:]
    figures = []
    for key, label, percent in ISSUE_FIGURES:
        if key in ENGAGED_FIGURES and not engagement:
            continue
        values = [numbers[send.pk][key] for send in previous]
        figures.append(
            Figure(
                key=key,
                label=label,
                value=numbers[last.pk][key],
                average=sum(values) / len(values) if values else None,
                percent=percent,
            )
        )
    return IssueComparison(
        issue=last.issue, figures=figures, previous_count=len(previous)
    )


@dataclass
class SendProgress:
    send: Send
    done: int
    percent: int
    # The deliverability guard's figures, from the send's own counters.
    figures: Figures = field(default_factory=Figures)
    limits: Limits | None = None

    @property
    def complaint_rate(self) -> str:
        return rate_shown(self.figures.complaint_rate)

    @property
    def bounce_rate(self) -> str:
        return rate_shown(self.figures.bounce_rate)

    @property
    def complaint_limit(self) -> str:
        return rate_shown(self.limits.complaint_rate) if self.limits else ""

    @property
    def bounce_limit(self) -> str:
        return rate_shown(self.limits.bounce_rate) if self.limits else ""


def sends_in_progress() -> list[SendProgress]:
    """Return the sends still going out (or paused), with how far each got."""
    # Welcome steps' sends are left out: they go out a few at a time for as long
    # as the step is active (their figures are on the welcome emails' page).
    sends = (
        Send.objects.filter(
            status__in=[Send.Status.PREPARING, Send.Status.SENDING, Send.Status.PAUSED]
        )
        .exclude(issue__kind=Issue.Kind.WELCOME)
        .select_related("issue")
    )
    progress = []
    limits = Limits.from_settings()
    for send in sends.order_by("created"):
        done = (
            send.sent_count
            + send.failed_count
            + send.bounced_count
            + send.skipped_count
        )
        percent = int(100 * done / send.total) if send.total else 0
        progress.append(
            SendProgress(
                send=send,
                done=done,
                percent=min(percent, 100),
                figures=Figures.of(send),
                limits=limits,
            )
        )
    return progress


def next_scheduled_issue() -> Issue | None:
    return (
        Issue.objects.filter(status=Issue.Status.SCHEDULED)
        .order_by("publish_at", "pk")
        .first()
    )


@dataclass
class Attention:
    message: str
    url: str = ""


@dataclass
class Home:
    comparison: IssueComparison | None
    in_progress: list[SendProgress]
    next_issue: Issue | None
    attention: list[Attention] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return self.comparison is None and not self.in_progress and not self.next_issue


def needs_attention(
    *, comparison: IssueComparison | None, now: datetime | None = None
) -> list[Attention]:
    """Return what the author should look at: sends Quire paused (with why),
    stalled or failing sends, issues citing unknown papers or that beat could not
    publish, a high complaint rate."""
    now = now or timezone.now()
    items = [
        Attention(
            f"“{send.issue}” is paused: {send.paused_reason}", _issue_url(send.issue)
        )
        for send in paused_by_quire().select_related("issue").order_by("pk")
    ]
    items += [Attention(message) for message in stalled_sends(now=now, paused=False)]
    failing = (
        Send.objects.filter(failed_count__gt=0)
        .exclude(status=Send.Status.DONE, finished_at__lt=now - timedelta(days=7))
        .select_related("issue")
        .order_by("-created")
    )
    for send in failing[:5]:
        items.append(
            Attention(
                f"“{send.issue}”: {send.failed_count} emails failed to send.",
                _issue_url(send.issue),
            )
        )
    unresolved = (
        Issue.objects.exclude(unknown_references=[])
        .exclude(status=Issue.Status.PUBLISHED)
        .order_by("-updated")
    )
    for issue in unresolved[:5]:
        names = ", ".join(issue.unknown_references[:3])
        items.append(
            Attention(
                f"“{issue}” cites papers Quire does not know: {names}.",
                _issue_url(issue),
            )
        )
    for issue in Issue.objects.exclude(publish_error="").order_by("-updated")[:5]:
        items.append(
            Attention(
                f"“{issue}” could not be published: {issue.publish_error}",
                _issue_url(issue),
            )
        )
    if comparison is not None:
        rate = next(f.value for f in comparison.figures if f.key == "complaint_rate")
        if rate and rate > COMPLAINT_RATE_LIMIT:
            items.append(
                Attention(
                    f"“{comparison.issue}” drew complaints from {rate:.2%} of those "
                    "who got it (above 0.1 %): check the list's consent and the "
                    "unsubscribe link.",
                    _issue_url(comparison.issue),
                )
            )
    return items


def _issue_url(issue: Issue) -> str:
    if issue.kind == Issue.Kind.WELCOME:
        # Not in the issue admin: edited as its welcome step (one query, for the
        # few items shown).
        step = WelcomeStep.objects.filter(issue=issue).values_list("pk", flat=True)
        return reverse("admin:sending_welcomestep_change", args=[step.first()])
    return reverse("admin:issues_issue_change", args=[issue.pk])


def home(*, engagement: bool = True) -> Home:
    """Return everything the dashboard shows apart from the charts; opens, clicks
    and unsubscribes only with engagement (who may see issue reports)."""
    comparison = last_issue_comparison(engagement=engagement)
    return Home(
        comparison=comparison,
        in_progress=sends_in_progress(),
        next_issue=next_scheduled_issue(),
        attention=needs_attention(comparison=comparison),
    )
