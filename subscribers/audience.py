"""Putting subscribers in newsletters and labels, set-based: imports, bulk actions,
the admin's change form, and a paying reader who asks for the emails again.

Every function here writes with one INSERT ... SELECT or one DELETE over a query of
subscriber ids, whatever its size (a "select all 100,000" in the admin included):
never a query per subscriber.
"""

import re
import unicodedata
from collections.abc import Collection
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection, models, transaction
from django.utils import timezone

from newsletter.models import Newsletter, Publication

from . import services
from .exporting import FORMULA_PREFIXES
from .models import Label, Subscriber, Subscription

# Label.name's max_length.
LABEL_MAX_LENGTH = 60
# A cell of an imported file gives at most this many labels, and a file at most
# this many different ones: a hostile or broken file cannot flood the label list.
LABELS_PER_ROW = 20
LABELS_PER_IMPORT = 500
# Between labels in one cell (Ghost writes "VIP, Early adopter"; Mailchimp quotes
# each tag).
_SEPARATORS = re.compile(r"[,;]")


class LabelRefused(ValueError):
    """A label name that cannot be used; str() says why, for the author."""


def clean_label_name(text: str) -> str:
    """Return the label name as stored, or raise LabelRefused.

    Control and format characters (newlines, bidi overrides, zero-width ones) are
    dropped and runs of spaces made one; a name that a spreadsheet would run as a
    formula, or longer than a label may be, is refused. Returns "" for nothing.
    """
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    text = " ".join(text.split()).strip().strip('"').strip()
    if not text:
        return ""
    if text.startswith(FORMULA_PREFIXES):
        raise LabelRefused(
            f"{text[:40]!r} starts with {text[0]!r}, which a spreadsheet would run "
            "as a formula"
        )
    if len(text) > LABEL_MAX_LENGTH:
        raise LabelRefused(
            f"{text[:40]!r}… is longer than {LABEL_MAX_LENGTH} characters"
        )
    return text


def split_label_names(cell: str) -> list[str]:
    """Return the raw names in one cell of labels (comma or semicolon separated)."""
    return [part for part in _SEPARATORS.split(cell) if part.strip()]


def parse_label_names(text: str) -> list[str]:
    """Return the cleaned, distinct names typed in one field, or raise LabelRefused
    naming the first bad one."""
    names: dict[str, None] = {}
    for part in split_label_names(text):
        name = clean_label_name(part)
        if name:
            names.setdefault(name, None)
    return list(names)


def labels_named(names: Collection[str]) -> dict[str, int]:
    """Return {name: label id} for the cleaned names, creating the missing labels.

    Names match case-insensitively an existing label (the author's spelling
    stays); two queries and one insert, whatever the number of names.
    """
    wanted = {name.casefold(): name for name in names if name}
    if not wanted:
        return {}

    def existing() -> dict[str, int]:
        found: dict[str, int] = {}
        for pk, name in Label.objects.values_list("pk", "name").iterator():
            key = name.casefold()
            if key in wanted:
                found[key] = pk
        return found

    found = existing()
    missing = [Label(name=wanted[k]) for k in wanted if k not in found]
    if missing:
        Label.objects.bulk_create(missing, ignore_conflicts=True)
        found = existing()
    return {name: found[name.casefold()] for name in names if name.casefold() in found}


def ids_of(queryset: models.QuerySet) -> models.QuerySet:
    """Return the query's ids as a plain subquery (no ordering, annotations or
    prefetches of the admin's list inside an IN (...))."""
    return queryset.order_by().values("pk")


@transaction.atomic
def add_labels(*, subscribers: models.QuerySet, labels: models.QuerySet) -> int:
    """Give every subscriber in the query every label in the other; returns how many
    labels were newly given (pairs that exist already are kept)."""
    # As Subscription.join: the ORM has no cross join, so the pairs are made in SQL
    # from the two compiled queries; every value is a parameter.
    try:
        people_sql, people_params = ids_of(subscribers).query.sql_with_params()
        labels_sql, labels_params = ids_of(labels).query.sql_with_params()
    except EmptyResultSet:  # pk__in=[]: a query that cannot match, not compiled
        return 0
    quote = connection.ops.quote_name
    table = quote(Subscriber.labels.through._meta.db_table)
    sql = (
        f"INSERT INTO {table} (subscriber_id, label_id) "  # noqa: S608
        f"SELECT s.id, n.id FROM {quote(Subscriber._meta.db_table)} s "
        f"CROSS JOIN {quote(Label._meta.db_table)} n "
        f"WHERE s.id IN ({people_sql}) AND n.id IN ({labels_sql}) "
        f"AND NOT EXISTS (SELECT 1 FROM {table} x "
        "WHERE x.subscriber_id = s.id AND x.label_id = n.id)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*people_params, *labels_params])
        return max(cursor.rowcount, 0)


@transaction.atomic
def remove_labels(*, subscribers: models.QuerySet, labels: models.QuerySet) -> int:
    """Take the labels off the subscribers; returns how many were taken off."""
    through = Subscriber.labels.through
    deleted, _ = through.objects.filter(
        subscriber_id__in=ids_of(subscribers), label_id__in=ids_of(labels)
    ).delete()
    return deleted


@transaction.atomic
def join_newsletters(
    *, subscribers: models.QuerySet, newsletters: models.QuerySet
) -> int:
    """Subscribe the subscribers to the newsletters; returns how many joined.

    Only the Subscription row: someone who unsubscribed from everything stays
    unsubscribed (and receives nothing) until they subscribe again themselves.
    """
    try:
        return max(Subscription.join(ids_of(subscribers), ids_of(newsletters)), 0)
    except EmptyResultSet:  # pk__in=[]: a query that cannot match, not compiled
        return 0


@transaction.atomic
def leave_newsletters(
    *, subscribers: models.QuerySet, newsletters: models.QuerySet
) -> int:
    """Take the subscribers out of the newsletters; returns how many left one."""
    deleted, _ = Subscription.objects.filter(
        subscriber_id__in=ids_of(subscribers), newsletter_id__in=ids_of(newsletters)
    ).delete()
    return deleted


def misses_the_emails(subscriber: Subscriber) -> bool:
    """Return whether the subscriber gets no newsletter by email today (they left,
    or are in none) though they could: False for a bounced or complained one."""
    if subscriber.status in (Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED):
        return False
    return (
        subscriber.status != Subscriber.Status.ACTIVE
        or not Subscription.objects.filter(subscriber=subscriber).exists()
    )


@transaction.atomic
def resubscribe_after_payment(
    *,
    subscriber: Subscriber,
    newsletters: models.QuerySet,
    ip: str | None,
    user_agent: str,
    source: str = "checkout",
    now: datetime | None = None,
) -> Subscriber:
    """Make a paying reader who asked for the emails on the success page an active
    subscriber of the chosen newsletters, with the consent of that request.

    Raises services.AddressRefused for a suppressed address (a hard bounce or a
    complaint): only the author can take an address off that list.
    """
    now = now or timezone.now()
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    if services.is_suppressed(subscriber.email) or subscriber.status in (
        Subscriber.Status.BOUNCED,
        Subscriber.Status.COMPLAINED,
    ):
        raise services.AddressRefused(
            "We cannot send email to this address: an earlier email to it bounced "
            "or was reported as spam. To receive the newsletter, write to "
            f"{Publication.load().sender_address}."
        )
    services.record_consent(
        subscriber=subscriber, ip=ip, user_agent=user_agent, source=source, now=now
    )
    if subscriber.status != Subscriber.Status.ACTIVE:
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.confirmed_at = subscriber.confirmed_at or now
        subscriber.unsubscribed_at = None
        subscriber.confirmation_nonce = ""
        subscriber.save(
            update_fields=[
                "status",
                "confirmed_at",
                "unsubscribed_at",
                "confirmation_nonce",
            ]
        )
    join_newsletters(
        subscribers=Subscriber.objects.filter(pk=subscriber.pk),
        newsletters=newsletters,
    )
    return subscriber


def default_newsletters() -> models.QuerySet:
    """Return the newsletters new subscribers join."""
    return Newsletter.objects.filter(join_by_default=True)
