"""Celery tasks for sending: thin wrappers that take ids and call delivery.

The one module that enqueues sending's work: services call ``queue_start_send`` and
``kick_send``; the tasks queue their own follow-ups from what delivery returns.

Delivery problems (SMTP 4xx, timeouts) are retried per row in the database with
backoff; the Celery retries here only cover the database or broker being briefly
unavailable.
"""

from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError

from . import delivery
from .delivery.welcome import enqueue_welcome_steps

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


def queue_start_send(send_id: int) -> None:
    """Start the send once the current transaction commits."""
    start_send.delay_on_commit(send_id)


def kick_send(send_id: int, count: int | None = None) -> None:
    """Enqueue batch tasks for a send (after commit); extra ones find nothing."""
    for _ in range(count or settings.SENDING_PARALLELISM):
        deliver_send.delay_on_commit(send_id)


@shared_task(ignore_result=True, **RETRY)
def start_send(send_id: int) -> None:
    """Freeze the send's audience, render its email and start its batch tasks."""
    if delivery.start_send(send_id=send_id):
        kick_send(send_id)


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
def reconcile_sends() -> dict:
    """Recover sends from lost messages and dead workers (beat, every minute)."""
    todo = delivery.reconcile_sends()
    for send_id in todo.start:
        start_send.delay(send_id)
    for send_id in todo.kick:
        kick_send(send_id)
    return todo.counts


@shared_task(ignore_result=True, **RETRY)
def send_welcome_steps() -> int:
    """Queue every welcome step for the subscribers it has come due for, and give
    the sends that got some their batch tasks (beat, every few seconds)."""
    send_ids = enqueue_welcome_steps()
    for send_id in send_ids:
        kick_send(send_id)
    return len(send_ids)
