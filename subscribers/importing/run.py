"""Importing subscribers in bulk: parse and check in Python, write set-based in SQL.

The CSV is read as a stream. Each row is checked and normalised in Python, then all
rows go into a temporary staging table at once (COPY on PostgreSQL) and three
statements finish the job: drop suppressed addresses, fill in names on subscribers
Quire already has, insert the rest. Newsletters and labels follow the same way: the
file's addresses (new and already here) in one more temporary table, a row's labels
as (address, label) pairs in another, each joined with one INSERT ... SELECT. No
save() per row, no query per row.
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

from newsletter.models import Newsletter

from .. import audience
from ..addresses import InvalidAddress, normalise_email
from ..models import Label, Subscriber, Subscription, Suppression, hash_email
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
# Every address of the file that is not suppressed, new or already here.
_MATCHED = "subscriber_import_matched"
# (address, label id): the labels each row names.
_ROW_LABELS = "subscriber_import_labels"
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
    # Label names in a row's labels cell that were not given (the row imported).
    refused_labels: list[tuple[int, str]] = field(default_factory=list)
    # Newsletter subscriptions and labels this import added.
    joined: int = 0
    labelled: int = 0

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
            f"Newsletter subscriptions added: {self.joined}. "
            f"Labels given: {self.labelled}.",
        ]
        lines += [f"  line {line}: skipped, {why}" for line, why in self.skipped]
        lines += [f"  line {line}: {why}" for line, why in self.errors]
        lines += [
            f"  line {line}: label not given, {why}"
            for line, why in self.refused_labels
        ]
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
    # Every label name of the file, cleaned, once (the rows share the strings).
    names: dict[str, str] = {}
    cleaned: dict[str, str] = {}

    def row_labels(number: int, cell: str) -> set[str] | None:
        if not cell:
            return None
        parts = audience.split_label_names(cell)
        if len(parts) > audience.LABELS_PER_ROW:
            report.refused_labels.append(
                (number, f"more than {audience.LABELS_PER_ROW} labels in one row")
            )
            parts = parts[: audience.LABELS_PER_ROW]
        given: set[str] = set()
        for part in parts:
            # A file repeats a few names on every row: each is cleaned once.
            name = cleaned.get(part)
            if name is None:
                try:
                    name = cleaned[part] = audience.clean_label_name(part)
                except audience.LabelRefused as why:
                    report.refused_labels.append((number, str(why)))
                    continue
            if not name:
                continue
            key = name.casefold()
            if key not in names:
                if len(names) >= audience.LABELS_PER_IMPORT:
                    report.refused_labels.append(
                        (
                            number,
                            f"{name[:40]!r}: a file may name at most "
                            f"{audience.LABELS_PER_IMPORT} different labels",
                        )
                    )
                    continue
                names[key] = name
            given.add(names[key])
        return given or None

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
        labels = row_labels(number, parsed.labels)
        seen = rows.get(email)
        if seen is None:
            rows[email] = [
                email,
                parsed.name[:200],
                parsed.status,
                parsed.consent_at,
                parsed.consent_ip,
                labels,
            ]
            continue
        report.duplicates += 1
        if labels:
            seen[5] = labels | (seen[5] or set())
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
    for email, name, status, consent_at, consent_ip, _labels in rows.values():
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


def _load_staging(
    cursor, rows: Iterable[tuple], table: str = _STAGING, fields=_STAGED_FIELDS
) -> None:
    columns = ", ".join(fields)
    if connection.vendor == "postgresql":
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"ANALYZE {table}")
    else:
        marks = ", ".join(["%s"] * len(fields))
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608
            list(rows),
        )


@dataclass
class _Placing:
    """Where the file's subscribers go: newsletters (None: new subscribers join
    the default ones) and labels for every row, and each row's own labels."""

    newsletter_ids: list[int] | None
    labels: list[str]
    label_ids: list[int] = field(default_factory=list)
    row_label_ids: dict[str, int] = field(default_factory=dict)

    @property
    def everyone(self) -> bool:
        """Whether anything goes to every address of the file (not only new ones)."""
        return bool(self.newsletter_ids or self.label_ids or self.row_label_ids)

    def resolve(self, rows: dict[str, list]) -> None:
        """Find or create the labels named, for this import and in its rows."""
        row_names = {name for row in rows.values() if row[5] for name in row[5]}
        if not (self.labels or row_names):
            return
        ids = audience.labels_named([*self.labels, *row_names])
        self.label_ids = [ids[name] for name in self.labels if name in ids]
        self.row_label_ids = {name: ids[name] for name in row_names if name in ids}


def _row_label_pairs(rows: dict[str, list], ids: dict[str, int]) -> Iterable[tuple]:
    for email, *_rest, labels in rows.values():
        if labels:
            for label_id in {ids[name] for name in labels if name in ids}:
                yield email, label_id


def _place(cursor, rows: dict[str, list], placing: _Placing, report) -> None:
    """Join the file's subscribers to the newsletters and give them the labels.

    Runs inside _write's transaction: _STAGING holds the new subscribers' rows
    (inserted already), _MATCHED every address of the file not suppressed.
    """
    table = Subscriber._meta.db_table
    everyone = Subscriber.objects.filter(
        email__in=RawSQL(f"SELECT email FROM {_MATCHED}", [])  # noqa: S608, S611
    )
    # Newsletters: the one place an import joins any. Without a choice, only the
    # subscribers this file adds join the newsletters new subscribers join (as
    # Subscription.join_defaults does); one already here keeps the newsletters
    # they chose. A choice made for this import is added to everyone in the file.
    if placing.newsletter_ids is None:
        # Subscription.join_defaults for the rows inserted above (ours by their
        # token), written against the staging table: its IN (...) of 100,000 new
        # ids took seconds where this join takes a fraction of one.
        subscriptions = Subscription._meta.db_table
        newsletters = Newsletter._meta.db_table
        cursor.execute(
            f"INSERT INTO {subscriptions} (subscriber_id, newsletter_id, created) "  # noqa: S608
            f"SELECT t.id, n.id, CURRENT_TIMESTAMP FROM {_STAGING} AS s "
            f"JOIN {table} AS t ON t.email = s.email AND t.token = s.token "
            f"CROSS JOIN {newsletters} AS n WHERE n.join_by_default = %s",
            [True],
        )
        report.joined = max(cursor.rowcount, 0)
    elif placing.newsletter_ids:
        report.joined = audience.join_newsletters(
            subscribers=everyone,
            newsletters=Newsletter.objects.filter(pk__in=placing.newsletter_ids),
        )
    if placing.label_ids:
        report.labelled += audience.add_labels(
            subscribers=everyone,
            labels=Label.objects.filter(pk__in=placing.label_ids),
        )
    if placing.row_label_ids:
        cursor.execute(f"DROP TABLE IF EXISTS {_ROW_LABELS}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_ROW_LABELS} "
            "(email varchar(254) NOT NULL, label_id integer NOT NULL)"
        )
        _load_staging(
            cursor,
            _row_label_pairs(rows, placing.row_label_ids),
            table=_ROW_LABELS,
            fields=["email", "label_id"],
        )
        through = Subscriber.labels.through._meta.db_table
        cursor.execute(
            f"INSERT INTO {through} (subscriber_id, label_id) "  # noqa: S608
            f"SELECT t.id, p.label_id FROM {_ROW_LABELS} AS p "
            f"JOIN {_MATCHED} AS m ON m.email = p.email "
            f"JOIN {table} AS t ON t.email = p.email "
            f"WHERE NOT EXISTS (SELECT 1 FROM {through} AS x "
            "WHERE x.subscriber_id = t.id AND x.label_id = p.label_id)"
        )
        report.labelled += max(cursor.rowcount, 0)
        cursor.execute(f"DROP TABLE {_ROW_LABELS}")


def _write(
    rows: dict[str, list], *, source: str, report: ImportReport, placing: _Placing
) -> None:
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
        placing.resolve(rows)
        if placing.everyone:
            cursor.execute(f"DROP TABLE IF EXISTS {_MATCHED}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_MATCHED} AS SELECT email FROM {_STAGING}"  # noqa: S608
            )
            if connection.vendor == "postgresql":
                cursor.execute(f"ANALYZE {_MATCHED}")
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
        _place(cursor, rows, placing, report)
        cursor.execute(f"DROP TABLE {_STAGING}")
        if placing.everyone:
            cursor.execute(f"DROP TABLE {_MATCHED}")


def _identity(value):
    return value


def import_subscribers(
    *,
    stream: TextIO,
    format: str = "auto",
    filename: str = "",
    newsletters: Iterable[int] | None = None,
    labels: Iterable[str] = (),
) -> ImportReport:
    """Import subscribers from a CSV text stream and return what happened.

    newsletters (ids) are joined by every subscriber in the file, new or already
    here; None (the default) puts only the new ones in the newsletters new
    subscribers join. labels (names, new or existing) go to every subscriber in
    the file, and a labels column gives each row its own; nothing is ever taken
    away. Raises ImportFailed (and imports nothing) when the file as a whole cannot
    be read or a label for every row is refused; bad rows and refused labels of a
    row are reported in the returned ImportReport while the rest imports.
    """
    if format not in READERS and format != "auto":
        raise ImportFailed(f"Unknown format {format!r}.")
    try:
        every_row = [n for n in (audience.clean_label_name(x) for x in labels) if n]
    except audience.LabelRefused as why:
        raise ImportFailed(f"Label {why}.") from None
    report = ImportReport(format=format, filename=filename)
    rows = _read_rows(stream, format, report)
    source = f"import:{report.format}:{filename}"[:200]
    if rows:
        placing = _Placing(
            newsletter_ids=None if newsletters is None else list(newsletters),
            labels=every_row,
        )
        _write(rows, source=source, report=report, placing=placing)
    return report
