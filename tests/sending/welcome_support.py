"""Helpers of the welcome sequence tests: steps and confirmed subscribers."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F
from django.utils import timezone

from issues.sending import services
from issues.sending.models import WelcomeStep
from newsletter.models import Newsletter
from subscribers.models import Subscriber, Subscription, hash_email, new_token


def make_step(
    subject: str,
    delay: timedelta,
    *,
    condition: str = "",
    active: bool = True,
    newsletter: Newsletter | None = None,
    body: str = "Welcome, **reader**. [Our archive](/issues/)",
    now: datetime | None = None,
) -> WelcomeStep:
    """Write a step as the admin does (the service)."""
    step = WelcomeStep(
        newsletter=newsletter or Newsletter.default(),
        delay=delay,
        condition=condition,
        active=active,
    )
    return services.save_welcome_step(step=step, subject=subject, body=body, now=now)


def confirmed_subscribers(
    count: int, *, start: int = 0, confirmed_at: datetime | None = None
) -> list[Subscriber]:
    """Create count subscribers who confirmed at confirmed_at (now), in bulk, in
    the newsletters new subscribers join (as an import does)."""
    when = confirmed_at or timezone.now()
    rows = [
        Subscriber(
            email=f"new{n}@example.org",
            email_hash=hash_email(f"new{n}@example.org"),
            status=Subscriber.Status.ACTIVE,
            token=new_token(),
            confirmed_at=when,
            consent_at=when,
        )
        for n in range(start, start + count)
    ]
    created = Subscriber.objects.bulk_create(rows, batch_size=2000)
    Subscription.join_defaults(
        Subscriber.objects.filter(pk__in=[s.pk for s in created]).values("pk")
    )
    return created


def move_time_forward(delta: timedelta) -> None:
    """Make everything that happened happen delta earlier: as if delta passed."""
    Subscriber.objects.filter(confirmed_at__isnull=False).update(
        confirmed_at=F("confirmed_at") - delta
    )
    WelcomeStep.objects.filter(activated_at__isnull=False).update(
        activated_at=F("activated_at") - delta
    )
