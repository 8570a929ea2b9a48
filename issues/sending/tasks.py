"""Celery tasks for sending: thin wrappers that take ids and call one service.

Delivery problems (SMTP 4xx, timeouts) are retried per row in the database with
backoff; the Celery retries here only cover the database or broker being briefly
unavailable.
"""

from typing import Any

from celery import shared_task
from django.db import DatabaseError, InterfaceError

from . import delivery, services

RETRY: dict[str, Any] = {
    "autoretry_for": (DatabaseError, InterfaceError, ConnectionError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}
# A waiting batch task checks back at most this often; longer waits are picked up
# by the reconciler, so no task ever sits in the broker with a long ETA.
MAX_WAIT = 60


@shared_task(ignore_result=True, **RETRY)
def start_send(send_id: int) -> None:
    """Freeze the send's audience, render its email and start its batch tasks."""
    services.start_send(send_id=send_id)


@shared_task(ignore_result=True, **RETRY)
def deliver_send(send_id: int) -> str:
    """Send queued deliveries of a send for a while, then hand over to a new task."""
    result = delivery.deliver_send(send_id=send_id)
    if result.next == "more":
        deliver_send.delay(send_id)
    elif result.next == "wait" and result.wait <= MAX_WAIT:
        deliver_send.apply_async((send_id,), countdown=result.wait)
    return result.next


@shared_task(ignore_result=True, **RETRY)
def publish_due_issues() -> int:
    """Publish scheduled issues whose time has come (beat, every 30 seconds)."""
    return len(services.publish_due_issues())


@shared_task(ignore_result=True, **RETRY)
def reconcile_sends() -> dict:
    """Recover sends from lost messages and dead workers (beat, every minute)."""
    return services.reconcile_sends()
