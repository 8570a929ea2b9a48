"""Importing subscribers in bulk: parse and check in Python, write set-based in SQL.

The CSV is read as a stream. Each row is checked and normalised in Python, then all
rows go into a temporary staging table at once (COPY on PostgreSQL) and three
statements finish the job: drop suppressed addresses, fill in names on subscribers
Quire already has, insert the rest. No save() per row, no query per row.
"""

import csv
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO, cast

from django.db import connection, transaction
from django.db.models.expressions import RawSQL

# The SQL below is built from model metadata and module constants only; every value
# from the file travels as a query parameter or through COPY (hence the S608 noqa).
from django.utils import timezone

from ..addresses import InvalidAddress, normalise_email
from ..models import Subscriber, Subscription, Suppression, hash_email
from .formats import (
    ACTIVE,
    READERS,
    ImportFailed,
    RowError,
    SkipRow,
    detect_format,
    headerless,
)

# A later row for the same address wins when it says the person left.
_STATUS_WEIGHT = {"pending": 0, "active": 1, "unsubscribed": 2, "bounced": 3}
_STAGING = "subscriber_import_staging"
_STAGED_FIELDS = [
    "email",
    "email_hash",
    "name",
    "status",
    "source",
    "token",
    "created",
    "confirmed_at",
    "consent_at",
    "consent_ip",
    "consent_source",
]
# Set to their model defaults on insert.
_DEFAULTED_FIELDS: dict[str, Any] = {
    "paused": False,
    "consent_user_agent": "",
    "consent_text_version": "",
    "confirmation_nonce": "",
}


@dataclass
class ImportReport:
    """What an import did, row by row where it matters."""

    format: str
    filename: str = ""
    rows: int = 0
    created: Counter = field(default_factory=Counter)
    existing: int = 0
    duplicates: int = 0
    suppressed: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def created_by_status(self) -> list[tuple[str, int]]:
        return sorted(self.created.items())

    @property
    def created_total(self) -> int:
        return sum(self.created.values())

    def summary(self) -> str:
        """Return the report as a few lines of text."""
        created = ", ".join(f"{n} {s}" for s, n in sorted(self.created.items()))
        lines = [
            f"Read {self.rows} rows ({self.format}).",
            f"Added {self.created_total} subscribers ({created or 'none'}).",
            f"Already subscribed, merged: {self.existing}.",
            f"Repeated in the file, merged: {self.duplicates}.",
            f"Suppressed or deleted, left out: {self.suppressed}.",
            f"Skipped: {len(self.skipped)}. Invalid: {len(self.errors)}.",
        ]
        lines += [f"  line {line}: skipped, {why}" for line, why in self.skipped]
        lines += [f"  line {line}: {why}" for line, why in self.errors]
        return "\n".join(lines)


def _read_rows(stream: TextIO, fmt: str, report: ImportReport) -> dict[str, list]:
    """Return the file's valid rows keyed by normalised address, duplicates merged."""
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"The file is not UTF-8 text ({exc}).") from None
    except csv.Error as exc:
        raise ImportFailed(f"The file cannot be read as CSV ({exc}).") from None
    if not header:
        raise ImportFailed("The file is empty.")
    first_row: list[str] | None = None
    if fmt == "auto":
        fmt = detect_format(header)
    report.format = fmt
    if fmt == "csv" and any("@" in cell for cell in header):
        read, first_row = headerless(header), header
    else:
        read = READERS[fmt](header)
    rows: dict[str, list] = {}
    normalise = normalise_email
    line = 1

    def numbered() -> Iterable[tuple[int, list[str]]]:
        nonlocal line
        if first_row is not None:
            yield 1, first_row
        try:
            for row in reader:
                line = reader.line_num
                yield line, row
        except csv.Error as exc:
            raise ImportFailed(f"Line {line + 1} is not valid CSV ({exc}).") from None
        except UnicodeDecodeError as exc:
            raise ImportFailed(
                f"The file is not UTF-8 text after line {line} ({exc})."
            ) from None

    for number, row in numbered():
        if not row or not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        try:
            parsed = read(row)
            if not parsed.email:
                raise RowError("no email address")
            email = normalise(parsed.email)
        except SkipRow as why:
            report.skipped.append((number, str(why)))
            continue
        except RowError as why:
            report.errors.append((number, str(why)))
            continue
        except InvalidAddress as why:
            report.errors.append((number, f"{parsed.email[:100]!r} is invalid: {why}"))
            continue
        seen = rows.get(email)
        if seen is None:
            rows[email] = [
                email,
                parsed.name[:200],
                parsed.status,
                parsed.consent_at,
                parsed.consent_ip,
            ]
            continue
        report.duplicates += 1
        if not seen[1] and parsed.name:
            seen[1] = parsed.name[:200]
        if _STATUS_WEIGHT[parsed.status] > _STATUS_WEIGHT[seen[2]]:
            seen[2] = parsed.status
        if seen[3] is None and parsed.consent_at is not None:
            seen[3], seen[4] = parsed.consent_at, parsed.consent_ip
    return rows


def _staged_rows(
    rows: dict[str, list], *, source: str, now: datetime, adapt
) -> Iterable[tuple]:
    token = secrets.token_urlsafe
    import_source = Subscriber.Source.IMPORT.value
    for email, name, status, consent_at, consent_ip in rows.values():
        confirmed_at = (consent_at or now) if status == ACTIVE else None
        yield (
            email,
            hash_email(email),
            name,
            status,
            import_source,
            token(24),
            adapt(now),
            adapt(confirmed_at),
            adapt(consent_at),
            consent_ip,
            source if consent_at else "",
        )


def _load_staging(cursor, rows: Iterable[tuple]) -> None:
    columns = ", ".join(_STAGED_FIELDS)
    if connection.vendor == "postgresql":
        with cursor.cursor.copy(f"COPY {_STAGING} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"ANALYZE {_STAGING}")
    else:
        marks = ", ".join(["%s"] * len(_STAGED_FIELDS))
        cursor.executemany(
            f"INSERT INTO {_STAGING} ({columns}) VALUES ({marks})",  # noqa: S608
            list(rows),
        )


def _write(rows: dict[str, list], *, source: str, report: ImportReport) -> None:
    table = Subscriber._meta.db_table
    suppressions = Suppression._meta.db_table
    # Every concrete field has a column (Optional only in the stubs).
    column = {f.name: cast(str, f.column) for f in Subscriber._meta.concrete_fields}
    staged = [column[name] for name in _STAGED_FIELDS]
    now = timezone.now()
    if connection.vendor == "postgresql":
        adapt = _identity
    else:
        adapt = connection.ops.adapt_datetimefield_value
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGING}")
        temp = "CREATE TEMPORARY TABLE"
        cursor.execute(
            f"{temp} {_STAGING} AS SELECT {', '.join(staged)} FROM {table} WHERE 1 = 0"  # noqa: S608
        )
        _load_staging(cursor, _staged_rows(rows, source=source, now=now, adapt=adapt))
        # Suppressed and deleted addresses never come back, whatever the file says.
        cursor.execute(
            f"DELETE FROM {_STAGING} WHERE email_hash IN "  # noqa: S608
            f"(SELECT email_hash FROM {suppressions})"
        )
        report.suppressed = max(cursor.rowcount, 0)
        # Addresses Quire already has keep their status; only a missing name is
        # filled in.
        cursor.execute(
            f"UPDATE {table} SET name = s.name FROM {_STAGING} AS s "  # noqa: S608
            f"WHERE {table}.email = s.email AND {table}.name = '' AND s.name <> ''"
        )
        cursor.execute(
            f"DELETE FROM {_STAGING} WHERE EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {table} AS t WHERE t.email = {_STAGING}.email)"
        )
        report.existing = max(cursor.rowcount, 0)
        cursor.execute(f"SELECT status, COUNT(*) FROM {_STAGING} GROUP BY status")  # noqa: S608
        report.created = Counter(dict(cursor.fetchall()))
        defaults = list(_DEFAULTED_FIELDS)
        insert_columns = ", ".join(staged + [column[d] for d in defaults])
        cursor.execute(
            f"INSERT INTO {table} ({insert_columns}) "  # noqa: S608
            f"SELECT {', '.join(staged + ['%s'] * len(defaults))} FROM {_STAGING} "
            "WHERE 1 = 1 ON CONFLICT DO NOTHING",
            [_DEFAULTED_FIELDS[d] for d in defaults],
        )
        lost = report.created_total - max(cursor.rowcount, 0)
        if lost > 0:  # signed up through the form while the import ran
            report.existing += lost
            report.created = Counter()
            cursor.execute(
                f"SELECT t.status, COUNT(*) FROM {table} AS t JOIN {_STAGING} AS s "  # noqa: S608
                "ON t.email = s.email AND t.token = s.token GROUP BY t.status"
            )
            report.created = Counter(dict(cursor.fetchall()))
        # The subscribers made here (their staged token) join the newsletters new
        # subscribers join, as one made by Subscriber.save() would.
        created = RawSQL(  # noqa: S611 (fixed SQL, no values)
            f"SELECT t.id FROM {table} AS t JOIN {_STAGING} AS s "  # noqa: S608
            "ON t.email = s.email AND t.token = s.token",
            [],
        )
        Subscription.join_defaults(
            Subscriber.objects.filter(pk__in=created).values("pk")
        )
        cursor.execute(f"DROP TABLE {_STAGING}")


def _identity(value):
    return value


def import_subscribers(
    *, stream: TextIO, format: str = "auto", filename: str = ""
) -> ImportReport:
    """Import subscribers from a CSV text stream and return what happened.

    Raises ImportFailed (and imports nothing) when the file as a whole cannot be
    read; bad rows are reported in the returned ImportReport while the rest imports.
    """
    if format not in READERS and format != "auto":
        raise ImportFailed(f"Unknown format {format!r}.")
    report = ImportReport(format=format, filename=filename)
    rows = _read_rows(stream, format, report)
    source = f"import:{report.format}:{filename}"[:200]
    if rows:
        _write(rows, source=source, report=report)
    return report
