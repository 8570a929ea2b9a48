"""Fields of Stripe objects read as Quire stores them.

Stripe sends ids either as strings or as expanded objects, numbers in metadata as
strings, and times as Unix timestamps.
"""

from datetime import UTC, datetime
from typing import Any


def timestamp(value: int | None) -> datetime | None:
    """Return a Stripe timestamp as an aware datetime, or None when unset."""
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def as_int(value: Any) -> int | None:
    """Return value as an int (metadata holds strings), or None if it is not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def object_id(value: Any) -> str:
    """Return the id of a Stripe object given by id or expanded; "" when missing."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""
