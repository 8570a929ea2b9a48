"""Thin tasks: the periodic flush of the tracking buffer."""

from celery import shared_task

from .flush import flush_hits


@shared_task(ignore_result=True)
def flush_tracking() -> int:
    """Store the buffered hits and the provider's new events (beat, every minute)."""
    return flush_hits()
