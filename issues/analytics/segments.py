"""The engagement condition of segments (opened or clicked, as a person, at least
one of the last N issues sent), registered with subscribers.segments by
AnalyticsConfig.ready()."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from issues.models import Issue
from issues.sending.models import Delivery, Send
from subscribers.models import Segment

from .models import Activity


def last_sends(count: int) -> QuerySet:
    """Return the last count sends of issues (welcome emails aside) that started,
    newest first, as a subquery."""
    return Send.objects.filter(
        started_at__isnull=False, issue__kind=Issue.Kind.ISSUE
    ).order_by("-started_at", "-pk")[:count]


def engagement_condition(segment: Segment) -> Q | None:
    """Return the filter on Subscriber for the segment's engagement, if it has one.

    One semi-join: the human opens and clicks of those issues (Activity, by its
    issue index), their deliveries among those sends' (by the send index and the
    primary key), and so their subscribers.
    """
    if not segment.engaged_in_last:
        return None
    sends = last_sends(segment.engaged_in_last)
    engaged = Activity.objects.filter(
        Q(first_human_open__isnull=False) | Q(first_human_click__isnull=False),
        issue__in=sends.values("issue_id"),
    ).values("delivery_id")
    return Q(
        pk__in=Delivery.objects.filter(send__in=sends.values("pk"), pk__in=engaged)
        .exclude(subscriber=None)
        .values("subscriber_id")
    )
