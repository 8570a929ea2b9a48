"""Subscriber export as CSV, streamed: status, dates and the consent record."""

import csv
from collections.abc import Iterator

from .models import Subscriber

EXPORT_FIELDS = [
    "email",
    "name",
    "status",
    "paused",
    "source",
    "created",
    "confirmed_at",
    "unsubscribed_at",
    "consent_at",
    "consent_ip",
    "consent_user_agent",
    "consent_source",
    "consent_text_version",
]


# A spreadsheet evaluates a cell that starts with one of these as a formula
# (=HYPERLINK(...) can leak data or run commands); a leading single quote makes it
# text. OWASP, "CSV Injection": https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like object whose write() hands the line back to the caller."""

    def write(self, value: str) -> str:
        return value


def neutralise_formula(text: str) -> str:
    """Return the cell text so that no spreadsheet evaluates it as a formula."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _text(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return neutralise_formula(str(value))


def iter_export_lines(queryset=None) -> Iterator[str]:
    """Yield the CSV export line by line, reading the database in chunks."""
    if queryset is None:
        queryset = Subscriber.objects.all()
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_FIELDS)
    rows = queryset.order_by("pk").values_list(*EXPORT_FIELDS).iterator(chunk_size=2000)
    for row in rows:
        yield writer.writerow([_text(value) for value in row])
