"""Thin tasks: each takes an id and calls one service."""

from typing import Any

from celery import shared_task

from . import email_change, services
from .addresses import InvalidAddress

# Account emails are retried on any error (SMTP down, a timeout): a lost
# confirmation email means a lost subscriber.
_RETRY: dict[str, Any] = {
    "autoretry_for": (Exception,),
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "max_retries": 8,
}


# Queued by the subscribe form, so that its answer is the same whatever the
# address's state. A malformed address (never from the form) is not retried.
@shared_task(ignore_result=True, dont_autoretry_for=(InvalidAddress,), **_RETRY)
def subscribe(
    *,
    email: str,
    name: str,
    ip: str | None,
    user_agent: str,
    form: str,
    newsletters: list[int] | None = None,
) -> None:
    """Ask the address to confirm its subscription (see services.subscribe)."""
    services.subscribe(
        email=email,
        name=name,
        ip=ip,
        user_agent=user_agent,
        form=form,
        newsletters=newsletters,
    )


@shared_task(ignore_result=True, **_RETRY)
def send_confirmation_email(subscriber_id: int) -> None:
    """Send the double opt-in email."""
    services.send_confirmation_email(subscriber_id=subscriber_id)


@shared_task(ignore_result=True, **_RETRY)
def send_welcome_email(subscriber_id: int) -> None:
    """Send the welcome email."""
    services.send_welcome_email(subscriber_id=subscriber_id)


@shared_task(ignore_result=True, **_RETRY)
def send_login_email(subscriber_id: int) -> None:
    """Send a magic sign-in link."""
    services.send_login_email(subscriber_id=subscriber_id)


@shared_task(ignore_result=True, **_RETRY)
def send_email_change_email(subscriber_id: int, new_email: str) -> None:
    """Send the link that confirms a new address, to that address."""
    email_change.send_email_change_email(
        subscriber_id=subscriber_id, new_email=new_email
    )


@shared_task(ignore_result=True, **_RETRY)
def send_email_changed_notice(subscriber_id: int, old_email: str) -> None:
    """Tell the old address that the subscription moved."""
    email_change.send_email_changed_notice(
        subscriber_id=subscriber_id, old_email=old_email
    )
