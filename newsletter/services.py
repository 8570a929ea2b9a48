import os
import secrets
import time
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .admin_login import AdminLogin, find_admin_login, saved_password_path
from .models import ContentVersion, Heartbeat

WORKER_HEARTBEAT = "worker"


def record_heartbeat(*, hostname: str = "", now: datetime | None = None) -> Heartbeat:
    """Record that a worker ran a task just now."""
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=WORKER_HEARTBEAT,
        defaults={"beat_at": now or timezone.now(), "hostname": hostname[:255]},
    )
    return heartbeat


@transaction.atomic
def ensure_admin_user(
    *, username: str = "admin", email: str = "admin@localhost"
) -> AdminLogin:
    """Create a superuser if there is none and return the admin login.

    The password comes from QUIRE_ADMIN_PASSWORD or is generated and kept in
    var/admin-password (readable by its owner only), so later starts can print it.
    """
    login = find_admin_login()
    if login is not None:
        return login
    password = os.environ.get("QUIRE_ADMIN_PASSWORD")
    if not password:
        password = secrets.token_urlsafe(12)
        saved = saved_password_path()
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(password)
        saved.chmod(0o600)
    get_user_model().objects.create_superuser(
        username=username, email=email, password=password
    )
    return AdminLogin(username, password)


def bump_content_version() -> None:
    """Raise the content version, in the caller's transaction (see ContentVersion).

    One UPDATE of one row: concurrent writers queue on that row until their
    transactions end, which keeps the number in commit order.
    """
    if not ContentVersion.objects.filter(pk=1).update(version=F("version") + 1):
        # The row is made by a migration; only a flushed test database lacks it.
        # A start from the clock never repeats a number readers were served.
        ContentVersion.objects.get_or_create(
            pk=1, defaults={"version": time.time_ns() // 1000}
        )
