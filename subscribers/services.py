"""Every write on the audience side: subscribe, confirm, leave, suppress, erase."""

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from newsletter.links import absolute_url
from newsletter.mail import send_templated_email
from newsletter.models import Newsletter, Publication

from . import signals, tasks
from .addresses import InvalidAddress, normalise_email
from .models import Subscriber, Subscription, Suppression, hash_email
from .tokens import make_confirmation_token, make_login_token

# At most one confirmation email per address in this window.
CONFIRMATION_RESEND_AFTER = timedelta(hours=24)


class AddressRefused(Exception):
    """The address is on the suppression list; str() is the message for the person."""


def is_suppressed(email: str) -> bool:
    """Return whether the address is on the suppression list."""
    return Suppression.objects.filter(email_hash=hash_email(email)).exists()


def _record_consent(
    *,
    subscriber: Subscriber,
    ip: str | None,
    user_agent: str,
    source: str,
    now: datetime,
) -> None:
    subscriber.consent_at = now
    subscriber.consent_ip = ip or None
    subscriber.consent_user_agent = (user_agent or "")[:500]
    subscriber.consent_source = source[:200]
    subscriber.consent_text_version = str(Publication.load().consent_text_version)


@transaction.atomic
def record_consent(
    *,
    subscriber: Subscriber,
    ip: str | None,
    user_agent: str,
    source: str,
    now: datetime | None = None,
) -> Subscriber:
    """Record that the person asked, from this request, to get the publication."""
    _record_consent(
        subscriber=subscriber,
        ip=ip,
        user_agent=user_agent,
        source=source,
        now=now or timezone.now(),
    )
    subscriber.save(
        update_fields=[
            "consent_at",
            "consent_ip",
            "consent_user_agent",
            "consent_source",
            "consent_text_version",
        ]
    )
    return subscriber


@transaction.atomic
def subscribe(
    *,
    email: str,
    name: str = "",
    ip: str | None = None,
    user_agent: str = "",
    form: str = "form:/subscribe/",
    newsletters: Iterable[int] | None = None,
    now: datetime | None = None,
) -> Subscriber | None:
    """Ask an address to confirm its subscription (double opt-in).

    Raises InvalidAddress for a malformed address. Returns None for a suppressed
    one. New, pending and unsubscribed addresses become pending and get a
    confirmation email, at most one per 24 hours; active ones are left as they are
    (a form anyone can send changes nobody's newsletters).

    newsletters: the ones chosen on the form, kept while the address is pending
    (nothing is sent before it confirms); None, the ones they had, or else the
    default ones.
    """
    now = now or timezone.now()
    email = normalise_email(email)
    if is_suppressed(email):
        return None
    # get_or_create() falls back to a locked get() when a concurrent request
    # inserted the address first.
    subscriber, _ = Subscriber.objects.select_for_update().get_or_create(
        email=email,
        defaults={"name": name.strip()[:200], "source": Subscriber.Source.FORM},
    )
    if subscriber.status not in (
        Subscriber.Status.PENDING,
        Subscriber.Status.UNSUBSCRIBED,
    ):
        return subscriber
    subscriber.status = Subscriber.Status.PENDING
    if name.strip() and not subscriber.name:
        subscriber.name = name.strip()[:200]
    _record_consent(
        subscriber=subscriber, ip=ip, user_agent=user_agent, source=form, now=now
    )
    if newsletters is not None:
        set_newsletters(subscriber=subscriber, newsletter_ids=newsletters)
    if not Subscription.objects.filter(subscriber_id=subscriber.pk).exists():
        # Back after leaving the last one (or a choice of newsletters since
        # deleted): the newsletters new subscribers get.
        Subscription.join_defaults(
            Subscriber.objects.filter(pk=subscriber.pk).values("pk")
        )
    send = (
        subscriber.confirmation_sent_at is None
        or now - subscriber.confirmation_sent_at >= CONFIRMATION_RESEND_AFTER
    )
    if send:
        subscriber.confirmation_sent_at = now
        if not subscriber.confirmation_nonce:
            subscriber.confirmation_nonce = secrets.token_hex(16)
    subscriber.save()
    if send:
        tasks.send_confirmation_email.delay_on_commit(subscriber.pk)
    return subscriber


@transaction.atomic
def subscriber_for_payment(
    *,
    email: str,
    ip: str | None = None,
    user_agent: str = "",
    source: str = "checkout:/pricing/",
    now: datetime | None = None,
) -> tuple[Subscriber, bool]:
    """Return the subscriber about to pay with this address, and whether it is new.

    Raises InvalidAddress for a malformed address and AddressRefused for a suppressed
    one. A new or unsubscribed address becomes pending with a consent record (paying
    is the opt-in; the completed checkout confirms it); any other subscriber is
    returned as it is.
    """
    now = now or timezone.now()
    email = normalise_email(email)
    if is_suppressed(email):
        raise AddressRefused(
            "This address cannot subscribe here; contact "
            f"{Publication.load().sender_address} if you think this is a mistake."
        )
    subscriber, created = Subscriber.objects.select_for_update().get_or_create(
        email=email, defaults={"source": Subscriber.Source.CHECKOUT}
    )
    if subscriber.status in (
        Subscriber.Status.PENDING,
        Subscriber.Status.UNSUBSCRIBED,
    ):
        subscriber.status = Subscriber.Status.PENDING
        _record_consent(
            subscriber=subscriber,
            ip=ip,
            user_agent=user_agent,
            source=source,
            now=now,
        )
        subscriber.save()
    return subscriber, created


@transaction.atomic
def resend_confirmation(*, queryset, now: datetime | None = None) -> int:
    """Send the pending subscribers in queryset a confirmation email.

    Keeps the limit of one per address per 24 hours. Returns how many were queued.
    """
    now = now or timezone.now()
    due = list(
        queryset.select_for_update()
        .filter(status=Subscriber.Status.PENDING)
        .filter(
            Q(confirmation_sent_at__isnull=True)
            | Q(confirmation_sent_at__lte=now - CONFIRMATION_RESEND_AFTER)
        )
        .only("pk", "confirmation_nonce")
    )
    for subscriber in due:
        subscriber.confirmation_sent_at = now
        subscriber.confirmation_nonce = (
            subscriber.confirmation_nonce or secrets.token_hex(16)
        )
    Subscriber.objects.bulk_update(
        due, ["confirmation_sent_at", "confirmation_nonce"], batch_size=1000
    )
    for subscriber in due:
        tasks.send_confirmation_email.delay_on_commit(subscriber.pk)
    return len(due)


@transaction.atomic
def confirm_subscription(
    *, subscriber: Subscriber, now: datetime | None = None
) -> Subscriber:
    """Make a pending subscriber active, void their link and send the welcome email.

    Anyone else (active, unsubscribed since, bounced) and any suppressed address is
    left as it is.
    """
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    if subscriber.status != Subscriber.Status.PENDING or is_suppressed(
        subscriber.email
    ):
        return subscriber
    subscriber.status = Subscriber.Status.ACTIVE
    subscriber.confirmed_at = now or timezone.now()
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
    tasks.send_welcome_email.delay_on_commit(subscriber.pk)
    return subscriber


@transaction.atomic
def unsubscribe_subscriber(
    *, subscriber: Subscriber, now: datetime | None = None
) -> Subscriber:
    """Stop all email to the subscriber at once; harmless when repeated."""
    if unsubscribe_subscribers(
        queryset=Subscriber.objects.filter(pk=subscriber.pk), now=now
    ):
        subscriber.refresh_from_db()
    return subscriber


@transaction.atomic
def unsubscribe_subscribers(*, queryset, now: datetime | None = None) -> int:
    """Unsubscribe every active or pending subscriber in the queryset at once."""
    return queryset.filter(
        status__in=[Subscriber.Status.ACTIVE, Subscriber.Status.PENDING]
    ).update(
        status=Subscriber.Status.UNSUBSCRIBED,
        unsubscribed_at=now or timezone.now(),
        confirmation_nonce="",
    )


@transaction.atomic
def leave_newsletter(
    *, subscriber: Subscriber, newsletter_id: int, now: datetime | None = None
) -> bool:
    """Take the subscriber off one newsletter; return whether that left them none.

    Leaving the last newsletter they receive is leaving all (unsubscribe_subscriber):
    someone who wants no newsletter has unsubscribed, and is counted so. Harmless
    when repeated.
    """
    Subscription.objects.filter(
        subscriber_id=subscriber.pk, newsletter_id=newsletter_id
    ).delete()
    if Subscription.objects.filter(subscriber_id=subscriber.pk).exists():
        return False
    unsubscribe_subscriber(subscriber=subscriber, now=now)
    return True


@transaction.atomic
def set_newsletters(
    *, subscriber: Subscriber, newsletter_ids: Iterable[int]
) -> list[int]:
    """Make the subscriber receive exactly these newsletters; return their ids.

    Unknown ids are ignored. An empty choice is refused by the forms (leaving all
    is its own button); here it would leave the subscriber in none.
    """
    wanted = set(
        Newsletter.objects.filter(pk__in=set(newsletter_ids)).values_list(
            "pk", flat=True
        )
    )
    Subscription.objects.filter(subscriber_id=subscriber.pk).exclude(
        newsletter_id__in=wanted
    ).delete()
    if wanted:  # (an empty IN () cannot be compiled into join()'s SQL)
        Subscription.join(
            Subscriber.objects.filter(pk=subscriber.pk).values("pk"),
            Newsletter.objects.filter(pk__in=wanted).values("pk"),
        )
    return sorted(wanted)


@transaction.atomic
def suppress_address(
    *, email: str, reason: str, now: datetime | None = None
) -> Suppression:
    """Put the address on the suppression list so nothing mails or imports it again.

    reason is a Suppression.Reason: "bounced" or "complained" also set the matching
    subscriber's status and, unless they had left already, when they left (now);
    "deleted" erases the matching subscriber altogether, keeping only the hash.
    """
    reason = Suppression.Reason(reason)
    email_hash = hash_email(email)
    matching = Subscriber.objects.filter(email_hash=email_hash)
    if reason == Suppression.Reason.DELETED:
        # The apps above erase their part first (see subscribers/signals.py); one
        # that cannot raises ErasureRefused before anything here is written.
        signals.subscriber_erasing.send(
            sender=Subscriber, subscribers=matching, email=email
        )
    suppression, created = Suppression.objects.get_or_create(
        email_hash=email_hash, defaults={"reason": reason}
    )
    if not created and reason == Suppression.Reason.DELETED:
        suppression.reason = reason
        suppression.save(update_fields=["reason"])
    if reason == Suppression.Reason.DELETED:
        matching.delete()
    else:
        # Taken off the list: the day they left counts in the growth figures
        # (issues/dashboard/rollup.py), as an unsubscribe does.
        matching.update(
            status=reason.value,
            confirmation_nonce="",
            unsubscribed_at=Coalesce(
                F("unsubscribed_at"), Value(now or timezone.now())
            ),
        )
    return suppression


def delete_subscriber(*, subscriber: Subscriber) -> Suppression:
    """Erase everything stored about the subscriber, keeping only a hash suppression.

    The apps above erase their part first: a paid subscription is cancelled at
    Stripe, the send history forgets the address. If one cannot (Stripe cannot be
    reached), signals.ErasureRefused propagates and nothing is erased, so nobody is
    charged without a record.
    """
    return suppress_address(email=subscriber.email, reason=Suppression.Reason.DELETED)


@transaction.atomic
def set_paused(*, subscriber: Subscriber, paused: bool) -> Subscriber:
    """Pause or resume the subscriber's emails."""
    subscriber.paused = paused
    subscriber.save(update_fields=["paused"])
    return subscriber


def set_tracking(*, subscriber: Subscriber, tracking: bool) -> Subscriber:
    """Let the subscriber's emails be tracked (opens, clicks), or not."""
    subscriber.tracking = tracking
    subscriber.save(update_fields=["tracking"])
    return subscriber


@transaction.atomic
def update_profile(*, subscriber: Subscriber, name: str) -> Subscriber:
    """Change the name the subscriber is greeted by."""
    subscriber.name = name.strip()[:200]
    subscriber.save(update_fields=["name"])
    return subscriber


@transaction.atomic
def request_login_link(*, email: str) -> Subscriber | None:
    """Email a sign-in link to the address if it belongs to a subscriber."""
    try:
        email = normalise_email(email)
    except InvalidAddress:
        return None
    subscriber = Subscriber.objects.filter(email=email).first()
    if subscriber is not None:
        tasks.send_login_email.delay_on_commit(subscriber.pk)
    return subscriber


def record_login(*, subscriber: Subscriber, now: datetime | None = None) -> None:
    """Note the sign-in, which voids every earlier sign-in link."""
    subscriber.last_login_at = now or timezone.now()
    subscriber.save(update_fields=["last_login_at"])


def export_subscriber_data(*, subscriber: Subscriber) -> dict:
    """Return everything stored about the subscriber, for "export my data".

    The apps above add their sections (see signals.subscriber_data_exporting).
    """

    def when(value):
        return value.isoformat() if value else None

    data = {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "paused": subscriber.paused,
        "source": subscriber.source,
        "created": when(subscriber.created),
        "confirmed_at": when(subscriber.confirmed_at),
        "unsubscribed_at": when(subscriber.unsubscribed_at),
        "last_login_at": when(subscriber.last_login_at),
        "consent": {
            "at": when(subscriber.consent_at),
            "ip": subscriber.consent_ip,
            "user_agent": subscriber.consent_user_agent,
            "source": subscriber.consent_source,
            "consent_text_version": subscriber.consent_text_version,
        },
    }
    for _receiver, sections in signals.subscriber_data_exporting.send(
        sender=Subscriber, subscriber=subscriber
    ):
        data.update(cast(dict[str, Any], sections))
    return data


# --- Emails (called by tasks) ----------------------------------------------------


def _send(
    *, subscriber: Subscriber, template: str, subject: str, context: dict
) -> None:
    publication = Publication.load()
    send_templated_email(
        to=subscriber.email,
        template=f"email/subscribers/{template}",
        subject=subject.format(publication=publication.name),
        context={"subscriber": subscriber, "publication": publication, **context},
        from_email=publication.from_header,
    )


def send_confirmation_email(*, subscriber_id: int) -> bool:
    """Send the double opt-in email with its confirmation link, if still pending."""
    subscriber = Subscriber.objects.filter(
        pk=subscriber_id, status=Subscriber.Status.PENDING
    ).first()
    if subscriber is None or not subscriber.confirmation_nonce:
        return False
    token = make_confirmation_token(subscriber)
    _send(
        subscriber=subscriber,
        template="confirm",
        subject="Confirm your subscription to {publication}",
        context={
            "confirm_url": absolute_url(reverse("subscribers:confirm", args=[token]))
        },
    )
    return True


def send_welcome_email(*, subscriber_id: int) -> bool:
    """Send the publication's welcome email to a subscriber who just confirmed."""
    subscriber = Subscriber.objects.filter(
        pk=subscriber_id, status=Subscriber.Status.ACTIVE
    ).first()
    if subscriber is None:
        return False
    _send(
        subscriber=subscriber,
        template="welcome",
        subject="Welcome to {publication}",
        context={
            "account_url": absolute_url(reverse("subscribers:account")),
            "unsubscribe_url": absolute_url(
                reverse("subscribers:unsubscribe", args=[subscriber.token])
            ),
        },
    )
    return True


def send_login_email(*, subscriber_id: int) -> bool:
    """Send a one-hour sign-in link."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    token = make_login_token(subscriber)
    _send(
        subscriber=subscriber,
        template="login",
        subject="Your sign-in link for {publication}",
        context={
            "login_url": absolute_url(reverse("subscribers:login_link", args=[token]))
        },
    )
    return True
