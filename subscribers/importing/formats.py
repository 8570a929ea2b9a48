"""Reading subscriber exports: Substack, Ghost, Mailchimp and plain email[,name].

Ghost's ``labels``, Mailchimp's ``TAGS`` and a plain file's ``labels`` (or ``tags``)
column come through as each row's labels cell.

Each format turns a CSV header into a row reader: a function from one CSV row (a
list of strings) to a ParsedRow, raising RowError with the reason a row is unusable
or SkipRow for a row that is fine but must not be imported.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..exporting import FORMULA_PREFIXES

FORMATS = {
    "auto": "Detect from the header",
    "substack": "Substack subscriber export",
    "ghost": "Ghost members CSV",
    "mailchimp": "Mailchimp audience export",
    "csv": "Plain CSV: email[,name][,labels]",
}

ACTIVE = "active"
PENDING = "pending"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"


class RowError(ValueError):
    """The row cannot be imported; str() is the reason shown to the author."""


class SkipRow(Exception):  # noqa: N818 - a signal, not an error
    """The row is well formed but is left out on purpose; str() says why."""


class ImportFailed(ValueError):
    """The whole file cannot be read; nothing was imported."""


@dataclass(slots=True)
class ParsedRow:
    email: str
    name: str
    status: str
    consent_at: datetime | None = None
    consent_ip: str | None = None
    # The row's labels cell as written (comma or semicolon separated), or "".
    labels: str = ""


RowReader = Callable[[list[str]], ParsedRow]

_TRUE = {"true", "yes", "1", "t", "y"}


def _parse_time(text: str, column: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"{column} is not a date and time: {text!r}") from None
    if value.tzinfo is None:  # Mailchimp and Substack write UTC without saying so
        value = value.replace(tzinfo=UTC)
    return value


def _column(header: list[str], *names: str) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _cell(row: list[str], index: int | None) -> str:
    if index is None or index >= len(row):
        return ""
    text = row[index]
    # Quire's own export quotes cells a spreadsheet would run as formulas
    # (subscribers/exporting.py); reading one back gives the original value.
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        text = text[1:]
    return text.strip()


def _raw_cell(row: list[str], index: int | None) -> str:
    # Labels are cleaned one by one (subscribers.audience.clean_label_name), which
    # refuses a formula-looking name instead of quietly unquoting it.
    if index is None or index >= len(row):
        return ""
    return row[index]


def _email_index(header: list[str], *names: str) -> int:
    index = _column(header, *names)
    if index is None:
        raise ImportFailed(
            f"The file has no {names[0]!r} column; its header is: {', '.join(header)}"
        )
    return index


def detect_format(header: list[str]) -> str:
    """Return the format name a header row looks like."""
    names = {h.strip().lower() for h in header}
    if "email address" in names:
        return "mailchimp"
    # A labels column alone is no sign of Ghost: plain lists may carry one too,
    # and they must come in pending.
    if "subscribed_to_emails" in names or (
        "email" in names
        and (
            names & {"complimentary_plan", "stripe_customer_id", "tiers"}
            or {"labels", "subscribed"} <= names
        )
    ):
        return "ghost"
    if "email" in names and names & {
        "active_subscription",
        "email_disabled",
        "first_payment_at",
        "expiry",
    }:
        return "substack"
    return "csv"


def substack(header: list[str]) -> RowReader:
    """Substack: everyone subscribed through Substack's own form, which is consent.

    email_disabled=true rows come in unsubscribed.
    """
    email = _email_index(header, "email")
    name = _column(header, "name")
    disabled = _column(header, "email_disabled")
    created = _column(header, "created_at")

    def read(row: list[str]) -> ParsedRow:
        status = UNSUBSCRIBED if _cell(row, disabled).lower() in _TRUE else ACTIVE
        return ParsedRow(
            _cell(row, email),
            _cell(row, name),
            status,
            _parse_time(_cell(row, created), "created_at"),
        )

    return read


def ghost(header: list[str]) -> RowReader:
    """Ghost members: subscribed_to_emails (older: subscribed) decides the status."""
    email = _email_index(header, "email")
    name = _column(header, "name")
    subscribed = _column(header, "subscribed_to_emails", "subscribed")
    created = _column(header, "created_at")
    deleted = _column(header, "deleted_at")
    labels = _column(header, "labels")

    def read(row: list[str]) -> ParsedRow:
        if _cell(row, deleted):
            raise SkipRow("deleted in Ghost")
        flag = _cell(row, subscribed).lower()
        if subscribed is not None and flag not in _TRUE | {
            "false",
            "no",
            "0",
            "f",
            "n",
        }:
            raise RowError(f"subscribed_to_emails is neither true nor false: {flag!r}")
        status = ACTIVE if subscribed is None or flag in _TRUE else UNSUBSCRIBED
        return ParsedRow(
            _cell(row, email),
            _cell(row, name),
            status,
            _parse_time(_cell(row, created), "created_at"),
            labels=_raw_cell(row, labels),
        )

    return read


def mailchimp(header: list[str]) -> RowReader:
    """Mailchimp: rows with an opt-in or confirm time carry consent and come in active.

    Rows from the unsubscribed export (UNSUB_TIME) come in unsubscribed, rows from
    the cleaned export (CLEAN_TIME) bounced, and rows without any opt-in record come
    in pending: they must confirm before they receive anything.
    """
    email = _email_index(header, "email address")
    first = _column(header, "first name", "fname")
    last = _column(header, "last name", "lname")
    optin_time = _column(header, "optin_time")
    optin_ip = _column(header, "optin_ip")
    confirm_time = _column(header, "confirm_time")
    confirm_ip = _column(header, "confirm_ip")
    unsub_time = _column(header, "unsub_time")
    clean_time = _column(header, "clean_time")
    tags = _column(header, "tags")

    def read(row: list[str]) -> ParsedRow:
        name = " ".join(p for p in (_cell(row, first), _cell(row, last)) if p)
        confirmed = _parse_time(_cell(row, confirm_time), "CONFIRM_TIME")
        opted_in = _parse_time(_cell(row, optin_time), "OPTIN_TIME")
        consent_at = confirmed or opted_in
        ip = _cell(row, confirm_ip) if confirmed else _cell(row, optin_ip)
        if _cell(row, clean_time):
            status = BOUNCED
        elif _cell(row, unsub_time):
            status = UNSUBSCRIBED
        elif consent_at:
            status = ACTIVE
        else:
            status = PENDING
        return ParsedRow(
            _cell(row, email),
            name,
            status,
            consent_at,
            ip or None,
            labels=_raw_cell(row, tags),
        )

    return read


def plain(header: list[str]) -> RowReader:
    """A plain email[,name] list records no consent: every row comes in pending."""
    email = _email_index(header, "email", "e-mail", "email address")
    name = _column(header, "name", "full name")
    labels = _column(header, "labels", "tags")

    def read(row: list[str]) -> ParsedRow:
        return ParsedRow(
            _cell(row, email), _cell(row, name), PENDING, labels=_raw_cell(row, labels)
        )

    return read


def headerless(row: list[str]) -> RowReader:
    """A plain list without a header: email in the first column, name in the second."""

    def read(row: list[str]) -> ParsedRow:
        return ParsedRow(_cell(row, 0), _cell(row, 1), PENDING)

    return read


READERS = {"substack": substack, "ghost": ghost, "mailchimp": mailchimp, "csv": plain}
