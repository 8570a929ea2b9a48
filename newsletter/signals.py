"""Celery lifecycle hooks: infrastructure only, no business logic."""

from celery.signals import worker_ready

from .tasks import record_heartbeat


@worker_ready.connect
def announce_worker(**kwargs) -> None:
    # A heartbeat through the broker as soon as the worker is up, so /healthz turns
    # green within seconds of start instead of after beat's first interval.
    record_heartbeat.delay()
