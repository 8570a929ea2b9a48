"""Thin Celery tasks for paid tiers: apply a Stripe event, send a billing email."""

import stripe
from celery import shared_task
from django.db import DatabaseError, InterfaceError

from . import emails


@shared_task(bind=True, ignore_result=True, max_retries=10)
def process_stripe_event(self, event_pk: int) -> None:
    """Apply one stored Stripe event (once, whatever the deliveries)."""
    # Imported here: the services import this module to queue tasks.
    from . import services

    try:
        services.process_stripe_event(event_pk=event_pk)
    except stripe.StripeError as exc:
        countdown = min(600, 5 * 2**self.request.retries)
        services.record_stripe_event_failure(
            event_pk=event_pk, error=str(exc), retry_in=countdown
        )
        if not _retryable(exc) or self.request.retries >= self.max_retries:
            services.mark_stripe_event_failed(event_pk=event_pk, error=str(exc))
            return
        raise self.retry(exc=exc, countdown=countdown) from exc
    except (DatabaseError, InterfaceError):
        # The database is briefly away: the event stays received and the
        # reconciler queues it again within a minute.
        raise
    except Exception as exc:
        # Anything else (an event Quire cannot read) fails the same way every time:
        # mark it failed so that the reconciler stops queueing it each minute; the
        # admin shows the error and can process it again after a fix.
        services.mark_stripe_event_failed(
            event_pk=event_pk, error=f"{type(exc).__name__}: {exc}"
        )
        raise


@shared_task(ignore_result=True)
def reconcile_stripe_events() -> int:
    """Queue again Stripe events no task has applied (beat, every minute)."""
    # Imported here: the services import this module to queue tasks.
    from . import services

    return services.requeue_stuck_stripe_events()


def _retryable(exc: stripe.StripeError) -> bool:
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    return (exc.http_status or 500) >= 500


@shared_task(
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=10,
    max_retries=5,
)
def send_billing_email(membership_pk: int, kind: str, extra: dict) -> None:
    """Send one billing email (welcome, payment_failed, ended) to a member."""
    emails.send_billing_email(membership_pk=membership_pk, kind=kind, extra=extra)


@shared_task(
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=10,
    max_retries=5,
)
def send_checkout_claim_email(claim_pk: int) -> None:
    """Email an address the link that confirms a checkout paid with it."""
    emails.send_checkout_claim_email(claim_pk=claim_pk)
