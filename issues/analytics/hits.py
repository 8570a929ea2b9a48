"""Recording a hit: what the pixel, the redirect and the page counter append.

Each function does O(1) work (a classification by string tests and one buffer
append) and never touches the database. No address, IP or cookie goes into a hit:
the IP is only looked at (Apple's networks) and a web visitor is kept as a salted
hash that changes every day (``visitor_digest``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

from django.db import IntegrityError

from subscribers.throttling import client_ip

from .buffer import get_buffer
from .machines import request_reason
from .models import DailySalt

_UA_KEPT = 300
# The day's salt, read at most once a day per process.
_salt_cache: dict[date, str] = {}


def _hit_id() -> str:
    return secrets.token_hex(12)


def _machine_reason(request, ip: str) -> str:
    """Why the request is a machine's ("" for a person's)."""
    return request_reason(request.headers.get("user-agent", "")[:_UA_KEPT], ip)


def record_open(request, *, delivery_id: int) -> None:
    """Buffer an open of a delivery's email."""
    reason = _machine_reason(request, client_ip(request))
    get_buffer().append(
        {"i": _hit_id(), "k": "open", "t": time.time(), "d": delivery_id, "m": reason}
    )


def record_click(request, *, delivery_id: int, send_id: int, number: int, url: str):
    """Buffer a click on a tracked link (which also counts as an open)."""
    reason = _machine_reason(request, client_ip(request))
    get_buffer().append(
        {
            "i": _hit_id(),
            "k": "click",
            "t": time.time(),
            "d": delivery_id,
            "s": send_id,
            "n": number,
            "u": url[:2000],
            "m": reason,
        }
    )


def record_unsubscribe(*, subscriber_id: int, issue_id: int) -> None:
    """Buffer an unsubscribe that came from an issue's email."""
    get_buffer().append(
        {
            "i": _hit_id(),
            "k": "unsubscribe",
            "t": time.time(),
            "sub": subscriber_id,
            "iss": issue_id,
        }
    )


def referrer_host(request) -> str:
    """Return the referring site's host, "" for none or for this site itself."""
    referrer = request.headers.get("referer", "")
    try:
        host = (urlsplit(referrer).hostname or "")[:255]
    except ValueError:
        return ""
    if host and host == request.get_host().partition(":")[0]:
        return ""
    return host


def day_salt(day: date) -> str:
    """Return the salt of the day's visitor hashes, made on first use."""
    salt = _salt_cache.get(day)
    if salt is None:
        _salt_cache.clear()  # yesterday's goes
        try:
            row, _ = DailySalt.objects.get_or_create(
                day=day, defaults={"salt": secrets.token_hex(32)}
            )
        except IntegrityError:  # another process made it first
            row = DailySalt.objects.get(day=day)
        salt = _salt_cache[day] = row.salt
    return salt


def visitor_digest(request, *, day: date, page: str, ip: str | None = None) -> str:
    """Return a visitor's hash for a day and page: the same all day, then useless."""
    if ip is None:
        ip = client_ip(request)
    raw = "|".join([day_salt(day), page, ip, request.headers.get("user-agent", "")])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def record_view(request, *, kind: str, slug: str) -> None:
    """Buffer a web view of an issue's or a paper's page (not a program's)."""
    ip = client_ip(request)
    if _machine_reason(request, ip):
        return
    now = datetime.now(UTC)
    get_buffer().append(
        {
            "i": _hit_id(),
            "k": "view",
            "t": now.timestamp(),
            "pk": kind,
            "slug": slug[:200],
            "r": referrer_host(request),
            "v": visitor_digest(request, day=now.date(), page=f"{kind}:{slug}", ip=ip),
        }
    )
