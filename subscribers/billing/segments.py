"""The membership condition of segments (free, paid, paying, complimentary),
registered with subscribers.segments by BillingConfig.ready()."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from subscribers.models import Segment

from .models import Membership, paid_access_q


def _complimentary_q(now) -> Q:
    return Q(complimentary=True) & (
        Q(complimentary_until__isnull=True) | Q(complimentary_until__gt=now)
    )


def membership_condition(segment: Segment) -> Q | None:
    """Return the filter on Subscriber for the segment's membership, if it has one.

    Paid is the paid email's rule (paid access now: paying, in a trial, past due
    within the grace period, or complimentary); free is everyone else; paying and
    complimentary split paid by whether the access is a grant.
    """
    if not segment.membership:
        return None
    now = timezone.now()
    members = Membership.objects.filter(subscriber=OuterRef("pk"))
    paid = members.filter(paid_access_q(now=now))
    kinds = Segment.Membership
    if segment.membership == kinds.PAID:
        return Q(Exists(paid))
    if segment.membership == kinds.FREE:
        return ~Q(Exists(paid))
    if segment.membership == kinds.COMPLIMENTARY:
        return Q(Exists(members.filter(_complimentary_q(now))))
    # Paying: paid access that is not only a grant.
    return Q(Exists(paid.exclude(_complimentary_q(now))))
