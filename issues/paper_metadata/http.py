"""One GET to a paper API: a timeout, a size limit, our name and a clear error."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.utils import timezone

from .errors import ApiUnreachable

# Neither API answers anything near this for one paper or a batch of a hundred.
MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: float | None  # seconds, from a Retry-After header


def user_agent() -> str:
    """Return who we are, with an address to write to (Crossref's etiquette)."""
    mailto = settings.CROSSREF_MAILTO or settings.DEFAULT_FROM_EMAIL
    return f"Quire/1.0 (+{settings.SITE_URL}; mailto:{mailto})"


def get(url: str, *, label: str, accept: str) -> Answer:
    """GET url and return its answer, whatever its status; raise ApiUnreachable
    when nothing (or too much) came back in time."""
    request = urllib.request.Request(  # noqa: S310 (see urlopen below)
        url, headers={"User-Agent": user_agent(), "Accept": accept}
    )
    try:
        # Only http(s) addresses from settings reach here, never an author's text.
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.PAPER_LOOKUP_TIMEOUT
        ) as response:
            return Answer(response.status, _read(response, label), None)
    except urllib.error.HTTPError as exc:
        with exc:
            body = _read(exc, label)
            return Answer(exc.code, body, _retry_after(exc.headers.get("Retry-After")))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ApiUnreachable(f"{label} is unreachable ({_reason(exc)}).") from exc


def _read(response, label: str) -> bytes:
    body = response.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise ApiUnreachable(f"{label} answered more than we can read.")
    return body


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "no answer in time"
    return str(reason) or type(reason).__name__


def _retry_after(value: str | None) -> float | None:
    """Return Retry-After in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())
