"""Dates as HTML wants them in `datetime` and meta attributes."""

from datetime import date, datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def html_datetime(value: datetime | date | None) -> str:
    """Return a valid HTML (and ISO 8601) date string: seconds, never microseconds.

    HTML's datetime attribute allows at most three digits of a second; `|date:"c"`
    prints all six that "Publish now" stores.
    """
    if not value:
        return ""
    if not isinstance(value, datetime):
        return value.isoformat()
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.replace(microsecond=0).isoformat()
