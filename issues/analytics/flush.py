"""The flush: buffered hits and the provider's events into events and daily figures.

Beat runs it every ANALYTICS_FLUSH_SECONDS. Each block of hits is stored in one
transaction, holding the flush's lock (a row lock on its Cursor), and only then
removed from the buffer: a flush that dies leaves the block to the next one, which
finds the hits it stored already (by their ids) and counts only the others. So every
hit is counted once, however often a block is replayed.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from issues.models import Issue, Paper
from issues.sending.models import Delivery, EmailEvent, RenderedEmail

from .buffer import get_buffer
from .machines import DeliveryHit, delivery_reasons
from .models import (
    Activity,
    Cursor,
    DailyIssueStat,
    DailyLinkStat,
    DailyPageStat,
    DailySalt,
    DailyVisitor,
    Event,
    HourlyIssueStat,
    Kind,
    Link,
)
from .papers import paper_for_url

logger = logging.getLogger(__name__)
BLOCK = 5000
PROVIDER_CURSOR = "provider-events"
LOCK = "flush"


def flush_hits(*, block: int = BLOCK) -> int:
    """Store every buffered hit (and new provider events); return how many."""
    stored = 0
    for hits in get_buffer().drain(block):
        with transaction.atomic():
            Cursor.objects.get_or_create(name=LOCK)
            Cursor.objects.select_for_update().get(name=LOCK)
            stored += _store_block(hits)
    stored += flush_provider_events()
    forget_past_visitors()
    return stored


def _at(hit: dict) -> datetime:
    return datetime.fromtimestamp(float(hit["t"]), UTC)


class Figures:
    """Increments gathered over a block, written with one UPDATE per row."""

    def __init__(self) -> None:
        self.daily: dict[tuple[int, date], Counter] = defaultdict(Counter)
        self.hourly: dict[tuple[int, datetime], Counter] = defaultdict(Counter)
        self.links: dict[tuple[int, date], Counter] = defaultdict(Counter)
        self.pages: dict[tuple[str, date, str], Counter] = defaultdict(Counter)

    def add(self, issue_id: int, at: datetime, **counts: int) -> None:
        self.daily[(issue_id, at.date())].update(counts)

    def hour(self, issue_id: int, at: datetime, **counts: int) -> None:
        hour = at.replace(minute=0, second=0, microsecond=0)
        self.hourly[(issue_id, hour)].update(counts)

    def take_back(self, other: Figures) -> None:
        """Subtract what other counted (a recount's earlier counting)."""
        for key, counts in other.daily.items():
            self.daily[key].subtract(counts)
        for hour, counts in other.hourly.items():
            self.hourly[hour].subtract(counts)
        for link, counts in other.links.items():
            self.links[link].subtract(counts)

    def write(self, pages: dict[str, tuple[int | None, int | None]]) -> None:
        _upsert(DailyIssueStat, self.daily, ("issue_id", "day"))
        _upsert(HourlyIssueStat, self.hourly, ("issue_id", "hour"))
        _upsert(DailyLinkStat, self.links, ("link_id", "day"))
        for (page, day, referrer), counts in self.pages.items():
            issue_id, paper_id = pages[page]
            row, _ = DailyPageStat.objects.get_or_create(
                page=page,
                day=day,
                referrer=referrer,
                defaults={"issue_id": issue_id, "paper_id": paper_id},
            )
            DailyPageStat.objects.filter(pk=row.pk).update(
                **{name: F(name) + n for name, n in counts.items()}
            )


def _upsert(model, increments: dict, fields: tuple[str, str]) -> None:
    for key, counts in increments.items():
        counts = {name: n for name, n in counts.items() if n}  # a recount's are < 0
        if not counts:
            continue
        lookup = dict(zip(fields, key, strict=True))
        row, _ = model.objects.get_or_create(**lookup)
        model.objects.filter(pk=row.pk).update(
            **{name: F(name) + n for name, n in counts.items()}
        )


def _store_block(hits: list[dict]) -> int:
    ids = [hit["i"] for hit in hits]
    seen = set(Event.objects.filter(hit_id__in=ids).values_list("hit_id", flat=True))
    fresh = []
    for hit in hits:
        if hit["i"] not in seen:
            seen.add(hit["i"])
            fresh.append(hit)
    if not fresh:
        return 0
    figures = Figures()
    events: list[Event] = []
    by_kind = defaultdict(list)
    for hit in fresh:
        by_kind[hit["k"]].append(hit)
    events += _deliveries(by_kind["open"] + by_kind["click"], figures)
    events += _unsubscribes(by_kind["unsubscribe"], figures)
    pages = _views(by_kind["view"], figures, events)
    Event.objects.bulk_create(events, batch_size=1000)
    figures.write(pages)
    return len(events)


def _deliveries(hits: list[dict], figures: Figures) -> list[Event]:
    if not hits:
        return []
    rows = {
        pk: (send_id, issue_id, sent_at)
        for pk, send_id, issue_id, sent_at in Delivery.objects.filter(
            pk__in={hit["d"] for hit in hits}
        ).values_list("pk", "send_id", "send__issue_id", "sent_at")
    }
    links_in_email = _links_per_send({row[0] for row in rows.values()})
    grouped: dict[int, list[tuple[dict, DeliveryHit]]] = defaultdict(list)
    for hit in sorted(hits, key=lambda h: h["t"]):
        row = rows.get(hit["d"])
        # An unknown delivery, or a link of another send's email: not counted.
        if row is None or (hit["k"] == "click" and hit.get("s") != row[0]):
            continue
        grouped[hit["d"]].append(
            (hit, DeliveryHit(hit["k"], _at(hit), hit.get("n"), hit.get("m", "")))
        )
    activities = Activity.objects.in_bulk(list(grouped))
    links = _links(
        {
            (rows[d][1], hit["n"], hit["u"])
            for d, pairs in grouped.items()
            for hit, _ in pairs
            if hit["k"] == "click" and hit.get("n") is not None
        }
    )
    earlier = _earlier_clicks(grouped, rows, links_in_email)
    events: list[Event] = []
    changed: list[Activity] = []
    created: list[Activity] = []
    for delivery_id, pairs in grouped.items():
        send_id, issue_id, sent_at = rows[delivery_id]
        before = [
            DeliveryHit("click", e.at, e.link.number if e.link else None, e.reason)
            for e in earlier.get(delivery_id, [])
        ]
        delivery_reasons(
            before + [dh for _, dh in pairs],
            sent_at=sent_at,
            links_in_email=links_in_email.get(send_id, 0),
        )
        activity = activities.get(delivery_id)
        if activity is None:
            activity = Activity(delivery_id=delivery_id, issue_id=issue_id)
            created.append(activity)
        else:
            changed.append(activity)
        turned = [
            (event, hit.reason)
            for event, hit in zip(earlier.get(delivery_id, []), before, strict=True)
            if hit.reason
        ]
        if turned:
            _recount(figures, activity, turned, issue_id=issue_id, sent_at=sent_at)
        for hit, dh in pairs:
            number = hit.get("n")
            link = (
                links.get((issue_id, number))
                if dh.kind == "click" and number is not None
                else None
            )
            _count(figures, activity, issue_id, dh, link, sent_at)
            events.append(
                Event(
                    hit_id=hit["i"],
                    kind=dh.kind,
                    at=dh.at,
                    issue_id=issue_id,
                    delivery_id=delivery_id,
                    link=link,
                    machine=bool(dh.reason),
                    reason=dh.reason[:40],
                )
            )
    Activity.objects.bulk_create(created)
    Activity.objects.bulk_update(
        changed,
        [
            "first_human_open",
            "first_machine_open",
            "first_human_click",
            "first_machine_click",
            "links",
        ],
    )
    return events


def _count(
    figures: Figures,
    activity: Activity,
    issue_id: int,
    hit: DeliveryHit,
    link: Link | None,
    sent_at: datetime | None,
) -> None:
    at = hit.at
    if hit.reason:
        if hit.kind == "open":
            figures.add(issue_id, at, machine_opens=1)
            activity.first_machine_open = activity.first_machine_open or at
        else:
            figures.add(issue_id, at, machine_clicks=1)
            activity.first_machine_click = activity.first_machine_click or at
        figures.hour(issue_id, at, machine=1)
        return
    # A click is an open too: the reader saw the message to click in it.
    figures.add(issue_id, at, opens=1)
    if activity.first_human_open is None:
        activity.first_human_open = at
        figures.add(issue_id, at, unique_opens=1)
        figures.hour(issue_id, at, unique_opens=1)
    if hit.kind != "click":
        return
    figures.add(issue_id, at, clicks=1)
    if activity.first_human_click is None:
        activity.first_human_click = at
        figures.add(issue_id, at, unique_clicks=1)
        figures.hour(issue_id, at, unique_clicks=1)
    if link is not None:
        figures.links[(link.pk, at.date())].update(clicks=1)
        if link.number not in activity.links:
            activity.links = [*activity.links, link.number]
            figures.links[(link.pk, at.date())].update(unique_clicks=1)


def _earlier_clicks(grouped, rows, links_in_email) -> dict[int, list[Event]]:
    """The clicks counted as a person's by an earlier block within the "every link
    at once" window before this block's, of deliveries with clicks in this block:
    a scanner's burst that a block boundary cut in two is still one burst."""
    window = timedelta(seconds=settings.ANALYTICS_ALL_LINKS_SECONDS)
    firsts = {
        delivery_id: min(dh.at for _, dh in pairs if dh.kind == "click")
        for delivery_id, pairs in grouped.items()
        if links_in_email.get(rows[delivery_id][0], 0) >= 3
        and any(dh.kind == "click" for _, dh in pairs)
    }
    if not firsts:
        return {}
    found: dict[int, list[Event]] = defaultdict(list)
    for event in (
        Event.objects.filter(
            # The issue and the time: the events' index, a few seconds of it.
            issue_id__in={rows[delivery_id][1] for delivery_id in firsts},
            delivery_id__in=list(firsts),
            kind=Kind.CLICK,
            machine=False,
            at__gte=min(firsts.values()) - window,
        )
        .select_related("link")
        .order_by("at")
    ):
        delivery_id = event.delivery_id or 0
        if event.at >= firsts[delivery_id] - window:
            found[delivery_id].append(event)
    return found


def _recount(
    figures: Figures,
    activity: Activity,
    turned: list[tuple[Event, str]],
    *,
    issue_id: int,
    sent_at: datetime | None,
) -> None:
    """Count a delivery's stored hits again now that some turned out a machine's.

    What they added is taken back (replayed as they were counted) and added again
    with the new reasons; the delivery's activity starts from that recount.
    """
    for event, reason in turned:
        event.machine, event.reason = True, reason[:40]
    stored = list(
        Event.objects.filter(
            delivery_id=activity.delivery_id, kind__in=[Kind.OPEN, Kind.CLICK]
        )
        .select_related("link")
        .order_by("at", "pk")
    )
    new_reasons = {event.pk: event.reason for event, _ in turned}
    taken_back = Figures()
    was, now = Activity(), Activity()
    for event in stored:
        number = event.link.number if event.link else None
        counted = DeliveryHit(event.kind, event.at, number, event.reason)
        _count(taken_back, was, issue_id, counted, event.link, sent_at)
        reason = new_reasons.get(event.pk, event.reason)
        recounted = DeliveryHit(event.kind, event.at, number, reason)
        _count(figures, now, issue_id, recounted, event.link, sent_at)
    figures.take_back(taken_back)
    for name in (
        "first_human_open",
        "first_machine_open",
        "first_human_click",
        "first_machine_click",
        "links",
    ):
        setattr(activity, name, getattr(now, name))
    Event.objects.bulk_update([event for event, _ in turned], ["machine", "reason"])


def _links_per_send(send_ids: set[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for send_id, headers in RenderedEmail.objects.filter(
        send_id__in=send_ids
    ).values_list("send_id", "headers"):
        number = int((headers.get("extra") or {}).get("tracked_links", 0) or 0)
        counts[send_id] = max(counts.get(send_id, 0), number)
    return counts


def _links(wanted: set[tuple[int, int, str]]) -> dict[tuple[int, int], Link]:
    """Return the Link rows of the (issue, number, url) clicked, made on first use."""
    keys = {(issue_id, number) for issue_id, number, _ in wanted}
    if not keys:
        return {}
    issues = {issue_id for issue_id, _ in keys}
    existing = {
        (link.issue_id, link.number): link
        for link in Link.objects.filter(issue_id__in=issues)
    }
    new = [
        Link(issue_id=i, number=n, url=u, paper=paper_for_url(u) if n else None)
        for i, n, u in wanted
        if (i, n) not in existing
    ]
    if new:
        Link.objects.bulk_create(new, ignore_conflicts=True)
        existing = {
            (link.issue_id, link.number): link
            for link in Link.objects.filter(issue_id__in=issues)
        }
    return existing


def _unsubscribes(hits: list[dict], figures: Figures) -> list[Event]:
    if not hits:
        return []
    # Counted only against an issue the subscriber was sent: the issue in the link
    # is not signed.
    received = set(
        Delivery.objects.filter(
            subscriber_id__in={hit["sub"] for hit in hits},
            send__issue_id__in={hit["iss"] for hit in hits},
        ).values_list("subscriber_id", "send__issue_id")
    )
    events = []
    for hit in hits:
        if (hit["sub"], hit["iss"]) not in received:
            continue
        at = _at(hit)
        figures.add(hit["iss"], at, unsubscribes=1)
        events.append(
            Event(hit_id=hit["i"], kind=Kind.UNSUBSCRIBE, at=at, issue_id=hit["iss"])
        )
    return events


def _views(
    hits: list[dict], figures: Figures, events: list[Event]
) -> dict[str, tuple[int | None, int | None]]:
    if not hits:
        return {}
    slugs = defaultdict(set)
    for hit in hits:
        slugs[hit["pk"]].add(hit["slug"])
    issues = dict(
        Issue.objects.filter(slug__in=slugs["issue"]).values_list("slug", "pk")
    )
    papers = dict(
        Paper.objects.filter(slug__in=slugs["paper"]).values_list("slug", "pk")
    )
    pages: dict[str, tuple[int | None, int | None]] = {}
    digests: dict[tuple[date, str], set[str]] = defaultdict(set)
    counted: list[tuple[dict, str, datetime]] = []
    for hit in hits:
        if hit["pk"] == "issue" and hit["slug"] in issues:
            pk = issues[hit["slug"]]
            page, pages_value = f"issue:{pk}", (pk, None)
        elif hit["pk"] == "paper" and hit["slug"] in papers:
            pk = papers[hit["slug"]]
            page, pages_value = f"paper:{pk}", (None, pk)
        else:
            continue
        pages[page] = pages_value
        at = _at(hit)
        figures.pages[(page, at.date(), hit.get("r", "")[:255])].update(views=1)
        digests[(at.date(), page)].add(hit["v"])
        counted.append((hit, page, at))
    new_visitors: Counter = Counter()
    for (day, page), found in digests.items():
        known = set(
            DailyVisitor.objects.filter(
                day=day, page=page, digest__in=found
            ).values_list("digest", flat=True)
        )
        fresh = found - known
        DailyVisitor.objects.bulk_create(
            [DailyVisitor(day=day, page=page, digest=d) for d in fresh],
            ignore_conflicts=True,
        )
        new_visitors[(day, page)] += len(fresh)
    for hit, page, at in counted:
        issue_id = pages[page][0]
        if issue_id is not None:
            figures.add(issue_id, at, web_views=1)
        events.append(Event(hit_id=hit["i"], kind=Kind.VIEW, at=at, issue_id=issue_id))
    for (day, page), n in new_visitors.items():
        issue_id = pages[page][0]
        if issue_id is not None and n:
            stamp = datetime(day.year, day.month, day.day, tzinfo=UTC)
            figures.add(issue_id, stamp, web_visitors=n)
    return pages


def forget_past_visitors(*, today: date | None = None) -> None:
    """Drop the hashes and salts of days before yesterday (their counts are kept).

    Yesterday's stay a day more, for hits of it still in the buffer.
    """
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=1)
    DailyVisitor.objects.filter(day__lt=cutoff).delete()
    DailySalt.objects.filter(day__lt=cutoff).delete()


_PROVIDER_KINDS = {
    "opened": Kind.OPEN,
    "clicked": Kind.CLICK,
    "bounced": Kind.BOUNCED,
    "complained": Kind.COMPLAINED,
}


def _delivery_of(message_id: str) -> int | None:
    # Quire's Message-IDs are quire.<send>.<delivery>@domain (emails/headers.py).
    local = message_id.strip("<>").partition("@")[0].split(".")
    if len(local) == 3 and local[0] == "quire" and local[2].isdigit():
        return int(local[2])
    return None


def _deliveries_by_message_id(message_ids: list[str]) -> dict[str, int]:
    """Map the provider's own message ids (stored on deliveries it sent) to them."""
    wanted = {m for m in message_ids if m and _delivery_of(m) is None}
    if not wanted:
        return {}
    return dict(
        Delivery.objects.filter(message_id__in=wanted).values_list("message_id", "pk")
    )


def flush_provider_events(*, block: int = BLOCK) -> int:
    """Fold the provider's new events (opens, clicks, bounces, complaints) in.

    Opens and clicks join the same per-delivery records as Quire's own, so one
    reader's open seen by both counts once.
    """
    stored = 0
    while True:
        with transaction.atomic():
            Cursor.objects.get_or_create(name=LOCK)
            Cursor.objects.select_for_update().get(name=LOCK)
            cursor, _ = Cursor.objects.get_or_create(name=PROVIDER_CURSOR)
            rows = list(
                EmailEvent.objects.filter(pk__gt=cursor.position)
                .order_by("pk")
                .values_list("pk", "event_id", "event_type", "message_id", "timestamp")[
                    :block
                ]
            )
            if not rows:
                return stored
            hits: list[dict] = []
            other: list[dict] = []
            by_message = _deliveries_by_message_id([row[3] for row in rows])
            for _pk, event_id, kind, message_id, timestamp in rows:
                delivery_id = _delivery_of(message_id) or by_message.get(message_id)
                if delivery_id is None or kind not in _PROVIDER_KINDS:
                    continue
                hit = {
                    "i": f"esp:{event_id}"[:80],
                    "k": _PROVIDER_KINDS[kind],
                    "t": timestamp.timestamp(),
                    "d": delivery_id,
                    "m": "",
                }
                (hits if kind in ("opened", "clicked") else other).append(hit)
            stored += _store_provider(hits, other)
            Cursor.objects.filter(pk=cursor.pk).update(position=rows[-1][0])


def _store_provider(hits: list[dict], other: list[dict]) -> int:
    ids = [hit["i"] for hit in hits + other]
    seen = set(Event.objects.filter(hit_id__in=ids).values_list("hit_id", flat=True))
    hits = [h for h in hits if h["i"] not in seen]
    other = [h for h in other if h["i"] not in seen]
    figures = Figures()
    issues = dict(
        Delivery.objects.filter(pk__in={h["d"] for h in hits + other}).values_list(
            "pk", "send__issue_id"
        )
    )
    for hit in hits:
        if hit["k"] == Kind.CLICK:
            # The provider's click names no link of Quire's; it counts as a click.
            hit["s"] = None
    events = []
    if hits:
        # Quire's rules apply the same way; the send check is not needed here.
        rows = dict(
            Delivery.objects.filter(pk__in={h["d"] for h in hits}).values_list(
                "pk", "send_id"
            )
        )
        for hit in hits:
            hit["s"] = rows.get(hit["d"])
            hit["n"] = None
            hit["u"] = ""
        events += _deliveries(hits, figures)
    for hit in other:
        issue_id = issues.get(hit["d"])
        if issue_id is None:
            continue
        at = _at(hit)
        name = "bounced" if hit["k"] == Kind.BOUNCED else "complaints"
        figures.add(issue_id, at, **{name: 1})
        events.append(
            Event(
                hit_id=hit["i"],
                kind=hit["k"],
                at=at,
                issue_id=issue_id,
                delivery_id=hit["d"],
                source="provider",
            )
        )
    for event in events:
        event.source = "provider"
    Event.objects.bulk_create(events, batch_size=1000)
    figures.write({})
    return len(events)
