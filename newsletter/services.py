from datetime import datetime

from django.utils import timezone

from .models import Heartbeat

WORKER_HEARTBEAT = "worker"


def record_heartbeat(*, hostname: str = "", now: datetime | None = None) -> Heartbeat:
    """Record that a worker ran a task just now."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=WORKER_HEARTBEAT,
        defaults={"beat_at": now or timezone.now(), "hostname": hostname[:255]},
    )
    return heartbeat
