"""The email provider's tracking events (bounces, complaints, deliveries), once each.

They arrive through the provider's webhook (webhooks.py, receivers.py); not the
Stripe events of billing (subscribers.billing.services.stripe_events).
"""

from __future__ import annotations

import hashlib
import json
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from subscribers.services import suppress_address

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
        suppress_address(email=recipient, reason="complained")
    elif event_type == "bounced":
        deliveries.filter(status=Delivery.Status.SENT).update(
            status=Delivery.Status.BOUNCED, last_error=stored.description
        )
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
