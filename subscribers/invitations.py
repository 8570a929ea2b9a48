"""Inviting an address from the admin: a pending subscriber and the double opt-in
email, under the same once-a-day rule as every confirmation email."""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format

from newsletter.models import Newsletter, Publication

from . import audience, services, tasks
from .addresses import normalise_email
from .models import Label, Subscriber, Suppression


class InvitationRefused(Exception):
    """Nothing was sent to the address; str() tells the staff member why."""


@dataclass(frozen=True)
class Invitation:
    subscriber: Subscriber
    created: bool
    # False when a confirmation email went to the address in the last 24 hours.
    sent: bool


def _staff_source(staff_name: str) -> str:
    return f"admin:{staff_name}"[:200]


@transaction.atomic
def invite_subscriber(
    *,
    email: str,
    staff_name: str,
    name: str = "",
    newsletter_ids: Sequence[int] | None = None,
    label_names: Sequence[str] = (),
    now: datetime | None = None,
) -> Invitation:
    """Add the address as a pending subscriber and send it the confirmation email.

    newsletter_ids: what they receive once confirmed (None: the default
    newsletters). Raises InvalidAddress for a malformed address and
    InvitationRefused, writing nothing, for an address that is suppressed, already
    active, or has left (only they may come back). A pending address gets the
    newsletters and labels, and the email unless one went out in the last 24 hours.
    """
    now = now or timezone.now()
    email = normalise_email(email)
    if services.is_suppressed(email):
        raise InvitationRefused(
            f"{email} is on the suppression list (a hard bounce, a spam complaint "
            "or an erasure): Quire never emails it again."
        )
    subscriber, created = Subscriber.objects.select_for_update().get_or_create(
        email=email,
        defaults={
            "name": name.strip()[:200],
            "source": Subscriber.Source.ADMIN,
            "status": Subscriber.Status.PENDING,
        },
    )
    if subscriber.status == Subscriber.Status.ACTIVE:
        raise InvitationRefused(
            f"{email} is subscribed already (since "
            f"{date_format(subscriber.confirmed_at or subscriber.created)}): "
            "nothing was sent."
        )
    if subscriber.status == Subscriber.Status.UNSUBSCRIBED:
        raise InvitationRefused(
            f"{email} unsubscribed; only they can subscribe again (on the "
            "subscribe form). Nothing was sent."
        )
    if subscriber.status != Subscriber.Status.PENDING:  # bounced, complained
        raise InvitationRefused(
            f"{email} is {subscriber.get_status_display().lower()}: nothing was sent."
        )
    one = Subscriber.objects.filter(pk=subscriber.pk)
    newsletters = (
        audience.default_newsletters()
        if newsletter_ids is None
        else Newsletter.objects.filter(pk__in=newsletter_ids)
    )
    if created:
        # Saving a new subscriber joined the default newsletters: the choice made
        # here replaces them.
        subscriber.subscriptions.exclude(newsletter__in=newsletters).delete()
    audience.join_newsletters(subscribers=one, newsletters=newsletters)
    if label_names:
        ids = audience.labels_named(label_names)
        audience.add_labels(
            subscribers=one, labels=Label.objects.filter(pk__in=ids.values())
        )
    if name.strip() and not subscriber.name:
        subscriber.name = name.strip()[:200]
    if created or not subscriber.consent_source:
        subscriber.consent_at = now
        subscriber.consent_source = _staff_source(staff_name)
        subscriber.consent_text_version = str(Publication.load().consent_text_version)
    send = (
        subscriber.confirmation_sent_at is None
        or now - subscriber.confirmation_sent_at >= services.CONFIRMATION_RESEND_AFTER
    )
    if send:
        subscriber.confirmation_sent_at = now
        subscriber.confirmation_nonce = (
            subscriber.confirmation_nonce or secrets.token_hex(16)
        )
    subscriber.save()
    if send:
        tasks.send_confirmation_email.delay_on_commit(subscriber.pk)
    return Invitation(subscriber=subscriber, created=created, sent=send)


@transaction.atomic
def invite_pending(
    *, queryset: models.QuerySet, staff_name: str, now: datetime | None = None
) -> int:
    """Send the pending, unsuppressed subscribers in queryset the confirmation
    email (at most one per address per 24 hours); returns how many were queued.

    Those without a consent record (a plain imported list) record the staff member
    who invited them.
    """
    now = now or timezone.now()
    pending = (
        Subscriber.objects.filter(
            pk__in=audience.ids_of(queryset), status=Subscriber.Status.PENDING
        )
        .exclude(
            email_hash__in=Suppression.objects.values("email_hash"),
        )
        .order_by()
    )
    due = Q(confirmation_sent_at__isnull=True) | Q(
        confirmation_sent_at__lte=now - services.CONFIRMATION_RESEND_AFTER
    )
    pending.filter(due, consent_source="").update(
        consent_at=now,
        consent_source=_staff_source(staff_name),
        consent_text_version=str(Publication.load().consent_text_version),
    )
    return services.resend_confirmation(queryset=pending, now=now)
