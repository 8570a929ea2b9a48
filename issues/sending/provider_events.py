"""The email provider's tracking events (bounces, complaints, deliveries), once each.

They arrive through the provider's webhook (webhooks.py, receivers.py); not the
Stripe events of billing (subscribers.billing.services.stripe_events).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

from django.db import IntegrityError, transaction
from django.utils import timezone

from subscribers.services import suppress_address

from . import guard
from .models import Delivery, EmailEvent

# Soft bounces in a row (with no delivery in between) before an address is
# suppressed.
SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE = "soft_bounce"
_SOFT_WORDS = re.compile(r"soft|transient|temporar|mailbox full|quota", re.I)


def _is_soft(event) -> bool:
    if event.event_type == "deferred":
        return True
    if event.event_type != "bounced":
        return False
    raw = event.esp_event
    raw_text = json.dumps(raw, default=str) if isinstance(raw, dict) else str(raw)
    response = (event.mta_response or "").strip()
    return bool(
        response.startswith("4")
        or re.search(r"\b4\.\d+\.\d+\b", response)
        or _SOFT_WORDS.search(event.description or "")
        or re.search(
            r'"(Type|type|bounceType|bounce_type)": "[^"]*soft', raw_text, re.I
        )
    )


def _event_id(event, esp_name: str) -> str:
    if event.event_id:
        return f"{esp_name}:{event.event_id}"[:255]
    # Providers without ids: the same payload is the same event.
    raw = json.dumps(event.esp_event, sort_keys=True, default=str)
    return f"{esp_name}:sha256:{hashlib.sha256(raw.encode()).hexdigest()}"


def record_email_event(*, event, esp_name: str) -> EmailEvent | None:
    """Record a tracking event and act on it; a repeated event id does nothing."""
    recipient = (event.recipient or "").strip().lower()
    if not recipient:
        return None
    event_type = SOFT_BOUNCE if _is_soft(event) else event.event_type
    try:
        with transaction.atomic():
            stored = EmailEvent.objects.create(
                event_id=_event_id(event, esp_name),
                event_type=event_type,
                email=recipient,
                message_id=(event.message_id or "")[:255],
                esp=esp_name,
                description=(event.description or event.mta_response or "")[:2000],
                timestamp=event.timestamp or timezone.now(),
            )
    except IntegrityError:
        return None  # already handled
    deliveries = Delivery.objects.filter(email=recipient)
    if event.message_id:
        deliveries = deliveries.filter(
            message_id__in=[event.message_id, event.message_id.strip("<>")]
        )
    if event_type == "complained":
        count_complaint(deliveries, complained_at=stored.timestamp)
        suppress_address(email=recipient, reason="complained")
    elif event_type == "bounced":
        count_bounce(deliveries, error=stored.description)
        suppress_address(email=recipient, reason="bounced")
    elif event_type == SOFT_BOUNCE:
        recent = list(
            EmailEvent.objects.filter(
                email=recipient, event_type__in=[SOFT_BOUNCE, "delivered"]
            )
            .order_by("-timestamp", "-pk")
            .values_list("event_type", flat=True)[:SOFT_BOUNCE_LIMIT]
        )
        if len(recent) == SOFT_BOUNCE_LIMIT and set(recent) == {SOFT_BOUNCE}:
            suppress_address(email=recipient, reason="bounced")
    return stored


def count_complaint(deliveries, *, complained_at) -> None:
    """Mark the email complained about, and count it for its send, once.

    The event names its message (or, from a provider that gives no id, the
    address's latest email is taken).
    """
    latest = (
        deliveries.filter(sent_at__isnull=False)
        .order_by("-sent_at", "-pk")
        .values_list("pk", "send_id")
        .first()
    )
    if latest is None:
        return
    pk, send_id = latest
    with transaction.atomic():
        if Delivery.objects.filter(pk=pk, complained_at__isnull=True).update(
            complained_at=complained_at
        ):
            guard.count(send_id=send_id, complaints=1)


def count_bounce(deliveries, *, error: str) -> None:
    """Mark the accepted emails bounced, and count each for its send, once."""
    with transaction.atomic():
        # Locked first: a second report of the same bounce (another event id) waits
        # here and then finds the row bounced already.
        rows = list(
            deliveries.filter(status=Delivery.Status.SENT)
            .select_for_update()
            .values_list("pk", "send_id")
        )
        if not rows:
            return
        Delivery.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            status=Delivery.Status.BOUNCED, last_error=error
        )
        for send_id, bounced in Counter(send_id for _, send_id in rows).items():
            guard.count(send_id=send_id, reported_bounces=bounced)
