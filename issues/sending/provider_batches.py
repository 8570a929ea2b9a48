"""Sending through an email provider's API (django-anymail) in batch calls.

One API call carries up to the provider's batch size of recipients: a single
``EmailMultiAlternatives`` with many ``to`` addresses, the body written once per
segment with the provider's merge fields where each recipient's unsubscribe URL and
address go, and ``merge_data`` / ``merge_headers`` holding each recipient's values
(its unsubscribe URL, its ``Message-ID`` and ``List-Unsubscribe``). Recipients who
allow tracking share calls whose body has the open pixel and tracked links, their
signed part a merge field too; those who do not go in calls without either. Where
anymail cannot merge into content that is not one of the provider's stored templates
(Postmark, Resend, any provider not listed in ``STYLES``), every recipient gets a
message of its own, one call each; the caller keeps several of them in flight.

``ProviderClient.send`` runs in the caller's pool threads: it builds the call's
message, makes the call and reads each recipient's outcome from
``message.anymail_status``. It never touches the database and never raises for a
delivery problem.
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.module_loading import import_string

from .emails import PreparedEmail, Recipient
from .emails.mime import PH_EMAIL, PH_UNSUBSCRIBE
from .emails.tracking import PH_TRACK, delivery_part
from .transports import BOUNCED, FAILED, SENT, TRANSIENT, Outcome, describe_error

# Per recipient: its unsubscribe URL and address, as text and HTML-escaped.
UNSUBSCRIBE, UNSUBSCRIBE_HTML = "quire_unsubscribe", "quire_unsubscribe_html"
EMAIL, EMAIL_HTML = "quire_email", "quire_email_html"
# Per tracked recipient: the signed part of its pixel's and tracked links' URLs.
TRACK = "quire_track"


@dataclass(frozen=True)
class Style:
    """How one provider takes a batch: its size and its merge-field syntax."""

    batch_size: int
    # "{}" becomes a merge variable's name; "" when anymail cannot merge into
    # content that is not a stored template (one message per recipient).
    merge_field: str = ""


# Keyed by the anymail backend's esp_name.
STYLES = {
    # Recipient variables, usable anywhere in the message.
    "Mailgun": Style(1000, "%recipient.{}%"),
    # Legacy substitutions in personalizations (merge_field_format below).
    "SendGrid": Style(1000, "-{}-"),
    # SendBulkEmail with an inline template (Handlebars; triple braces: the values
    # are escaped here, once for the text part and once for HTML).
    "Amazon SES": Style(50, "{{{{{{{}}}}}}}"),
    # Batch endpoints that take no merge fields in non-template content.
    "Postmark": Style(500),
    "Resend": Style(100),
}
ONE_AT_A_TIME = Style(1)


def through_provider() -> bool:
    """Return whether EMAIL_BACKEND is a provider's (or any other Django) backend.

    The same test as transports.open_transport: neither SMTP nor the outbox.
    """
    return settings.EMAIL_BACKEND not in (
        "django.core.mail.backends.smtp.EmailBackend",
        "newsletter.mail.OutboxBackend",
    )


def esp_name() -> str:
    """Return the configured backend's provider name ("" for a non-anymail one)."""
    backend = import_string(settings.EMAIL_BACKEND)
    return str(getattr(backend, "esp_name", "") or "")


def provider_style() -> Style:
    """Return the configured provider's style, batch size overridden by settings."""
    style = STYLES.get(esp_name(), ONE_AT_A_TIME)
    override = settings.SENDING_PROVIDER_BATCH_SIZE
    if override > 0:
        return Style(override, style.merge_field)
    return style


def unsubscribe_mailto(prepared: PreparedEmail, recipient: Recipient) -> str:
    return f"{prepared.mailto}?subject={quote('unsubscribe ' + recipient.token)}"


def recipient_headers(prepared: PreparedEmail, recipient: Recipient) -> dict[str, str]:
    """Return the headers that differ per recipient."""
    url = prepared.unsubscribe_url(recipient.token)
    return {
        "Message-ID": f"<{recipient.message_id}>",
        "List-Unsubscribe": f"<{url}>, <{unsubscribe_mailto(prepared, recipient)}>",
    }


def list_headers(prepared: PreparedEmail) -> dict[str, str]:
    """Return the list headers every recipient shares."""
    return {
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": prepared.extra.get("list_id", ""),
    }


def merge_values(
    prepared: PreparedEmail, recipient: Recipient, *, tracked: bool = False
) -> dict[str, str]:
    url = prepared.unsubscribe_url(recipient.token)
    values = {
        UNSUBSCRIBE: url,
        UNSUBSCRIBE_HTML: html.escape(url),
        EMAIL: recipient.email,
        EMAIL_HTML: html.escape(recipient.email),
    }
    if tracked:
        # Digits, dots and URL-safe base64: the same in text, HTML and a URL.
        values[TRACK] = delivery_part(recipient.delivery_id)
    return values


@dataclass
class MergeBody:
    """A segment's text and HTML with the provider's merge fields, made once."""

    text: str
    html: str

    @classmethod
    def for_style(
        cls, prepared: PreparedEmail, style: Style, *, tracked: bool = False
    ) -> MergeBody | None:
        """The segment's body with merge fields; tracked: the HTML with the pixel and
        tracked links, and the text with the same links tracked (for a call whose
        recipients all allow tracking)."""
        if not style.merge_field or (tracked and not prepared.tracked_html):
            return None
        if style.merge_field.startswith("{{") and any(
            "{{" in part for part in (prepared.html, prepared.text, prepared.subject)
        ):
            # Braces of the issue's own (a code sample) would be read as
            # Handlebars: such an email goes one message per recipient.
            return None
        field = style.merge_field.format
        plain = prepared.tracked_text if tracked and prepared.tracked_text else None
        text = (
            (plain or prepared.text)
            .replace(PH_UNSUBSCRIBE, field(UNSUBSCRIBE))
            .replace(PH_EMAIL, field(EMAIL))
        )
        source = prepared.tracked_html if tracked else prepared.html
        body = source.replace(PH_UNSUBSCRIBE, field(UNSUBSCRIBE_HTML)).replace(
            PH_EMAIL, field(EMAIL_HTML)
        )
        if tracked:
            body = body.replace(PH_TRACK, field(TRACK))
            text = text.replace(PH_TRACK, field(TRACK))
        return cls(text, body)


def batch_message(
    prepared: PreparedEmail,
    recipients: list[Recipient],
    body: MergeBody,
    esp: str,
    *,
    tracked: bool = False,
) -> EmailMultiAlternatives:
    """Return one message for many recipients, their values as merge data."""
    message = EmailMultiAlternatives(
        subject=prepared.subject,
        body=body.text,
        from_email=prepared.from_header,
        to=[recipient.email for recipient in recipients],
        headers=list_headers(prepared),
    )
    message.attach_alternative(body.html, "text/html")
    # anymail's own message attributes (AnymailMessageMixin), set on a plain one.
    extra: Any = message
    extra.merge_data = {
        r.email: merge_values(prepared, r, tracked=tracked) for r in recipients
    }
    extra.merge_headers = {r.email: recipient_headers(prepared, r) for r in recipients}
    if esp == "SendGrid":
        extra.esp_extra = {"merge_field_format": "-{}-"}
    elif esp == "Amazon SES":
        # SendBulkEmail needs a template; this one is inline (SES v2
        # TemplateContent), so the subject and body go there, not in the message.
        extra.template_id = "quire-inline"
        extra.esp_extra = {
            "DefaultContent": {
                "Template": {
                    "TemplateContent": {
                        "Subject": prepared.subject,
                        "Text": body.text,
                        "Html": body.html,
                    },
                    "TemplateData": "{}",
                }
            }
        }
        message.subject = ""
        message.body = ""
        message.alternatives = []
    return message


def single_message(
    prepared: PreparedEmail, recipient: Recipient
) -> EmailMultiAlternatives:
    """Return one recipient's own message, its values substituted here."""
    message = EmailMultiAlternatives(
        subject=prepared.subject,
        body=prepared.personalised_text(recipient),
        from_email=prepared.from_header,
        to=[recipient.email],
        headers={**recipient_headers(prepared, recipient), **list_headers(prepared)},
    )
    message.attach_alternative(prepared.personalised_html(recipient), "text/html")
    return message


@dataclass
class CallResult:
    """What one API call did: an outcome per recipient address (lowercased)."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    # Seconds the provider asked us to wait (a 429's Retry-After).
    retry_after: float = 0.0
    status_code: int | None = None


def retry_after(exc: Exception) -> float:
    """Return the seconds in the answer's Retry-After header (0 when none)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    value = str(headers.get("Retry-After", "") or "").strip()
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _whole_call(recipients: list[Recipient], outcome: Outcome) -> CallResult:
    return CallResult({r.email.lower(): outcome for r in recipients})


_ACCEPTED = {"sent", "queued", "scheduled", "unknown", None}
_REFUSED = {"rejected", "invalid"}


def _entry_errors(message: Any) -> list[str]:
    """Return SES's per-destination error texts, in the order of ``to``."""
    response = getattr(message.anymail_status, "esp_response", None)
    if isinstance(response, dict):
        results = response.get("BulkEmailEntryResults") or []
        return [
            f"{result.get('Status', '')} {result.get('Error', '')}".strip()
            for result in results
        ]
    return []


def read_outcomes(message: Any, recipients: list[Recipient], esp: str) -> CallResult:
    """Return each recipient's outcome from message.anymail_status.recipients."""
    statuses = {
        address.lower(): status
        for address, status in (message.anymail_status.recipients or {}).items()
    }
    errors = _entry_errors(message)
    result = CallResult()
    for position, recipient in enumerate(recipients):
        status = statuses.get(recipient.email.lower())
        kind = getattr(status, "status", None)
        esp_id = getattr(status, "message_id", None)
        error = errors[position] if position < len(errors) else ""
        if kind in _ACCEPTED:
            outcome = Outcome(SENT, message_id=str(esp_id or recipient.message_id))
        elif kind in _REFUSED:
            outcome = Outcome(BOUNCED, error or f"{esp or 'The provider'}: {kind}")
        else:  # "failed": this recipient only, try again later
            outcome = Outcome(TRANSIENT, error or f"{esp or 'The provider'}: {kind}")
        result.outcomes[recipient.email.lower()] = outcome
    return result


class ProviderClient:
    """Make API calls from several threads, one backend connection per thread."""

    def __init__(self, prepared: dict[str, PreparedEmail]) -> None:
        self.esp = esp_name()
        self.style = provider_style()
        self.backend_class = import_string(settings.EMAIL_BACKEND)
        # Made once here, in the caller's thread, for every call of the send.
        self.bodies = {
            (segment, tracked): MergeBody.for_style(email, self.style, tracked=tracked)
            for segment, email in prepared.items()
            for tracked in (False, True)
        }
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    def merges(self, segment: str, tracked: bool = False) -> bool:
        """Return whether a call for this segment can carry many recipients."""
        return self.bodies.get((segment, tracked)) is not None

    def _connection(self) -> Any:
        backend = getattr(self._local, "backend", None)
        if backend is None:
            options: dict[str, Any] = {}
            if issubclass(self.backend_class, AnymailBaseBackend):
                # Refused recipients are read per recipient, not raised for all.
                options["ignore_recipient_status"] = True
            backend = get_connection(fail_silently=False, **options)
            backend.open()
            self._local.backend = backend
            with self._lock:
                self._opened.append(backend)
        return backend

    def send(
        self,
        prepared: PreparedEmail,
        recipients: list[Recipient],
        *,
        tracked: bool = False,
    ) -> CallResult:
        """Make one API call for these recipients; never raise for a refusal.

        tracked: a merged call's recipients all allow tracking (a message of one
        recipient's own is tracked or not by the recipient alone)."""
        body = self.bodies.get((prepared.segment, tracked))
        if body is not None:
            message = batch_message(
                prepared, recipients, body, self.esp, tracked=tracked
            )
        else:
            (recipient,) = recipients
            message = single_message(prepared, recipient)
        try:
            self._connection().send_messages([message])
        except AnymailRecipientsRefused as exc:
            return _whole_call(recipients, Outcome(BOUNCED, describe_error(exc)))
        except AnymailAPIError as exc:
            status = getattr(exc, "status_code", None)
            if status is None or status == 429 or status >= 500:
                result = _whole_call(
                    recipients, Outcome(TRANSIENT, describe_error(exc))
                )
                result.retry_after = retry_after(exc) if status == 429 else 0.0
            else:
                result = _whole_call(recipients, Outcome(FAILED, describe_error(exc)))
            result.status_code = status
            return result
        except (AnymailError, OSError) as exc:
            # The configuration, the network: nothing was accepted, try again.
            return _whole_call(
                recipients,
                Outcome(TRANSIENT, f"{type(exc).__name__}: {describe_error(exc)}"),
            )
        if getattr(message, "anymail_status", None) is None:
            # A plain Django backend: it took the message or raised.
            return _whole_call(
                recipients, Outcome(SENT, message_id=recipients[0].message_id)
            )
        return read_outcomes(message, recipients, self.esp)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for backend in opened:
            with contextlib.suppress(Exception):  # a dead connection is closed
                backend.close()
