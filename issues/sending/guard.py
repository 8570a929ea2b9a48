"""The deliverability guard: a send pauses itself when too many of its emails draw
complaints or hard bounces.

The figures are counters on the Send, each added to (``count``) in the transaction
that records what happened to one email: accepted or refused by the mail server
(delivery/recording.py, delivery/provider_sending.py), reported bounced or marked as
spam by the provider (provider_events.py). Callers count a delivery only when its
own row changed (a conditional UPDATE), so each email counts once however often an
event repeats, and nothing scans a send's deliveries.

The rule (``verdict``), for a send that is sending and still has emails queued:

- complaint rate = complaints / accepted, judged from SENDING_PAUSE_MIN_SAMPLE
  accepted emails on, pauses above SENDING_PAUSE_COMPLAINT_RATE;
- hard-bounce rate = hard bounces / attempted (accepted, or refused as a hard
  bounce), judged from SENDING_PAUSE_MIN_SAMPLE attempted on, pauses above
  SENDING_PAUSE_BOUNCE_RATE;
- after the author resumes, a rate pauses again only once its count has grown past
  what it was at the resume (``Send.complaints_at_resume``, ``bounces_at_resume``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from .models import Delivery, Send

logger = logging.getLogger(__name__)

# The counters count() adds to, by its keyword.
COUNTERS = {
    "accepted": "accepted_count",
    "refused": "refused_count",
    "reported_bounces": "reported_bounce_count",
    "complaints": "complaint_count",
}
_READ = [
    "status",
    "accepted_count",
    "refused_count",
    "reported_bounce_count",
    "complaint_count",
    "complaints_at_resume",
    "bounces_at_resume",
]


@dataclass(frozen=True)
class Figures:
    """A send's complaints and hard bounces, and what they are out of."""

    accepted: int = 0
    refused: int = 0
    reported_bounces: int = 0
    complaints: int = 0
    complaints_at_resume: int = 0
    bounces_at_resume: int = 0

    @classmethod
    def of(cls, send: Send) -> Figures:
        return cls(
            accepted=send.accepted_count,
            refused=send.refused_count,
            reported_bounces=send.reported_bounce_count,
            complaints=send.complaint_count,
            complaints_at_resume=send.complaints_at_resume,
            bounces_at_resume=send.bounces_at_resume,
        )

    @property
    def attempted(self) -> int:
        return self.accepted + self.refused

    @property
    def hard_bounces(self) -> int:
        return self.refused + self.reported_bounces

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.accepted if self.accepted else 0.0

    @property
    def bounce_rate(self) -> float:
        return self.hard_bounces / self.attempted if self.attempted else 0.0


@dataclass(frozen=True)
class Limits:
    complaint_rate: float
    bounce_rate: float
    min_sample: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            complaint_rate=settings.SENDING_PAUSE_COMPLAINT_RATE,
            bounce_rate=settings.SENDING_PAUSE_BOUNCE_RATE,
            min_sample=settings.SENDING_PAUSE_MIN_SAMPLE,
        )


def percent(rate: float) -> str:
    """Return a rate as the author reads it: 0.45 %."""
    return f"{rate * 100:.2f} %"


def verdict(figures: Figures, limits: Limits) -> str | None:
    """Return why a send with these figures must pause, or None if it may go on."""
    if (
        figures.accepted >= limits.min_sample
        and figures.complaints > figures.complaints_at_resume
        and figures.complaint_rate > limits.complaint_rate
    ):
        return (
            f"Complaint rate {percent(figures.complaint_rate)} "
            f"({figures.complaints} spam complaints out of {figures.accepted} "
            f"accepted emails) is above the {percent(limits.complaint_rate)} limit "
            "that mailbox providers such as Gmail hold bulk senders to. Check where "
            "this list came from (a recent import, old or bought addresses, people "
            "who did not ask for it), then resume from the send panel; it pauses "
            "again only if more complaints arrive while the rate is above the limit."
        )
    if (
        figures.attempted >= limits.min_sample
        and figures.hard_bounces > figures.bounces_at_resume
        and figures.bounce_rate > limits.bounce_rate
    ):
        return (
            f"Hard-bounce rate {percent(figures.bounce_rate)} "
            f"({figures.hard_bounces} addresses refused for good out of "
            f"{figures.attempted} attempted) is above the "
            f"{percent(limits.bounce_rate)} limit: many of these addresses do not "
            "exist. Check where this list came from (an old export, a typo-ridden "
            "import, bought addresses), then resume from the send panel; it pauses "
            "again only if more hard bounces arrive while the rate is above the "
            "limit. The bounced addresses are suppressed already."
        )
    return None


def count(
    *,
    send_id: int,
    accepted: int = 0,
    refused: int = 0,
    reported_bounces: int = 0,
    complaints: int = 0,
) -> str | None:
    """Add to the send's counters and pause it if a rate crossed its limit.

    Call it in the transaction that recorded the emails' outcomes or the event.
    Returns the reason when this call paused the send, else None.
    """
    added = {
        COUNTERS["accepted"]: accepted,
        COUNTERS["refused"]: refused,
        COUNTERS["reported_bounces"]: reported_bounces,
        COUNTERS["complaints"]: complaints,
    }
    added = {column: n for column, n in added.items() if n}
    if not added:
        return None
    quote = connection.ops.quote_name
    assignments = ", ".join(
        f"{quote(column)} = {quote(column)} + %s" for column in added
    )
    # One statement adds and reads back (the row stays locked until commit, so a
    # concurrent count waits and then sees this one's figures).
    sql = (
        f"UPDATE {quote(Send._meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote('id')} = %s RETURNING {_returned()}"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [*added.values(), send_id])
        return judge(send_id=send_id, row=cursor.fetchone())


def _returned() -> str:
    return ", ".join(connection.ops.quote_name(column) for column in _READ)


def accepted_sql(amount: str, *, when: str = "TRUE") -> str:
    """count(accepted=…) as SQL for a data-modifying WITH (PostgreSQL): add
    `amount` (SQL) if `when` (SQL) holds, and return the figures judge() reads;
    the one parameter is the send's id. The caller writes its rows and the count
    in one statement: one round trip, no transaction."""
    quote = connection.ops.quote_name
    column = quote(COUNTERS["accepted"])
    return (
        f"UPDATE {quote(Send._meta.db_table)} SET {column} = {column} + {amount} "  # noqa: S608
        f"WHERE {quote('id')} = %s AND ({when}) RETURNING {_returned()}"
    )


def judge(*, send_id: int, row: tuple | None) -> str | None:
    """Pause the send if the figures just counted (the columns of _READ, in order)
    crossed a limit; return the reason when this paused it."""
    if row is None or row[0] != Send.Status.SENDING:
        return None
    reason = verdict(Figures(*row[1:]), Limits.from_settings())
    if reason is None:
        return None
    return _pause(send_id=send_id, reason=reason)


def _pause(*, send_id: int, reason: str) -> str | None:
    # A send whose last emails are out (only some in flight) finishes instead:
    # there is nothing left to hold back.
    if not Delivery.objects.filter(
        send_id=send_id, status=Delivery.Status.QUEUED
    ).exists():
        return None
    if not Send.objects.filter(pk=send_id, status=Send.Status.SENDING).update(
        status=Send.Status.PAUSED, paused_reason=reason
    ):
        return None
    logger.warning("Send %s paused by the deliverability guard: %s", send_id, reason)
    return reason
