"""The one clock of sending: the database server's.

Leases (``claimed_at``), heartbeats and retry times are written with ``Now()`` and
compared with ``database_now()``, so worker hosts whose clocks disagree still agree
on whose lease ran out.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from ..models import Send


def database_now() -> datetime:
    """The database server's time now."""
    compiler = Send.objects.all().query.get_compiler(connection=connection)
    sql, params = compiler.compile(Now())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", list(params))  # noqa: S608 - fixed SQL
        raw = cursor.fetchone()[0]
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(raw)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value
