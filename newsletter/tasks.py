from celery import shared_task

from . import services


@shared_task(bind=True, ignore_result=True)
def record_heartbeat(self) -> None:
    """Record that this worker is alive (scheduled by beat, read by /healthz)."""
    services.record_heartbeat(hostname=self.request.hostname or "")
