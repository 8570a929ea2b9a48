"""Segments as one set-based query: a Segment turned into a filter on Subscriber.

The conditions on subscribers' own data (newsletter, labels, signup source and
date) are built here. Two live in apps above this one, which this app may not
import: membership (free, paying, complimentary) is billing's, engagement (opened
or clicked in the last N issues) is analytics'. Each of those apps registers its
condition in its ``AppConfig.ready()`` (``register_condition("membership", …)``),
the way sending registers its /healthz check (newsletter/health.py).

Every condition is a ``Q`` on Subscriber (plain filters and ``EXISTS`` subqueries,
never a list of ids), so a segment's audience stays one query: counted on the
confirmation page, frozen with one INSERT ... SELECT per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .models import Segment, Subscriber, Subscription

# A condition reads the segment and returns a filter on Subscriber, or None when
# the segment does not use it.
Condition = Callable[[Segment], Q | None]

_conditions: dict[str, Condition] = {}

# The conditions registered from above, and the segment fields that need them:
# a segment that sets one while its app is missing is an error, never "anyone".
NEEDS = {"membership": "membership", "engagement": "engaged_in_last"}


def register_condition(name: str, condition: Condition) -> None:
    """Add a segment condition under name (registering a name again replaces it)."""
    _conditions[name] = condition


def unregister_condition(name: str) -> None:
    """Remove the condition registered under name, if any."""
    _conditions.pop(name, None)


def segment_q(segment: Segment) -> Q:
    """Return the filter on Subscriber of everyone the segment matches (whoever
    receives email or not: narrow with ``receiving()``)."""
    q = Q()
    if segment.newsletter_id is not None:
        q &= Q(
            Exists(
                Subscription.objects.filter(
                    subscriber=OuterRef("pk"), newsletter=segment.newsletter_id
                )
            )
        )
    label_ids = [label.pk for label in segment.labels.all()]
    if label_ids:
        # EXISTS, not a join: someone with two of the labels is one subscriber.
        q &= Q(
            Exists(
                Subscriber.labels.through.objects.filter(
                    subscriber=OuterRef("pk"), label__in=label_ids
                )
            )
        )
    if segment.source:
        q &= Q(source=segment.source)
    if segment.joined_after is not None:
        q &= Q(created__gte=_start_of(segment.joined_after))
    if segment.joined_before is not None:
        q &= Q(created__lt=_start_of(segment.joined_before))
    for name, field in NEEDS.items():
        if getattr(segment, field) in (None, "") or name in _conditions:
            continue
        raise ImproperlyConfigured(
            f"The segment “{segment}” uses {field}, and no app provides it."
        )
    for condition in _conditions.values():
        extra = condition(segment)
        if extra is not None:
            q &= extra
    return q


def _start_of(day: date) -> datetime:
    # A moment, not created__date: the comparison stays on the indexed column.
    return timezone.make_aware(datetime.combine(day, time.min))


def segment_subscribers(
    segment: Segment, subscribers: QuerySet[Subscriber] | None = None
) -> QuerySet[Subscriber]:
    """Return the subscribers (of the given query, or all) the segment matches."""
    if subscribers is None:
        subscribers = Subscriber.objects.all()
    return subscribers.filter(segment_q(segment))


def segment_count(segment: Segment) -> int:
    """Return how many subscribers receiving email the segment matches now."""
    return segment_subscribers(segment, Subscriber.objects.receiving()).count()
