import hashlib
import secrets

from django.db import models
from django.db.models import Exists, OuterRef
from django.db.models.functions import Lower

from .addresses import address_key, normalise_email


def new_token() -> str:
    """Return a random opaque token for links in emails."""
    return secrets.token_urlsafe(24)


def hash_email(email: str) -> str:
    """Return the hex SHA-256 of the address in its stored form (the suppression
    key)."""
    return hashlib.sha256(address_key(email).encode()).hexdigest()


class SubscriberQuerySet(models.QuerySet):
    def receiving(self) -> "SubscriberQuerySet":
        """Return who gets the next issue: active, not paused and not suppressed.

        A plain set-based filter (no evaluation): an audience is frozen from it
        with one INSERT ... SELECT.
        """
        return self.filter(status=Subscriber.Status.ACTIVE, paused=False).exclude(
            Exists(Suppression.objects.filter(email_hash=OuterRef("email_hash")))
        )


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        ACTIVE = "active", "Active"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"

    class Source(models.TextChoices):
        FORM = "form", "Signup form"
        IMPORT = "import", "Import"
        ADMIN = "admin", "Admin"
        CHECKOUT = "checkout", "Paid checkout"

    # Stored normalised (lower-cased), so uniqueness ignores case.
    # Unique through the Lower(email) constraint below; plain indexes rather than
    # unique=True keep PostgreSQL from adding a second, LIKE-only index per field.
    email = models.EmailField(max_length=254, help_text="Stored in lower case.")
    email_hash = models.CharField(
        max_length=64,
        editable=False,
        default="",
        help_text="SHA-256 of the address, matched against the suppression list.",
    )
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING
    )
    paused = models.BooleanField(
        default=False,
        help_text="The subscriber paused their emails from their account page; "
        "they stay subscribed but receive nothing until they resume.",
    )
    source = models.CharField(
        max_length=10, choices=Source.choices, default=Source.FORM
    )
    tracking = models.BooleanField(
        default=True,
        # Set by the database too: imports insert rows with SQL of their own.
        db_default=True,
        help_text="Their issue emails may say when they are opened and which links "
        "are followed (when the publication tracks them). The subscriber can turn "
        "this off on their account page.",
    )
    token = models.CharField(
        max_length=64,
        default=new_token,
        help_text="Opaque token in unsubscribe links. Never shown to others.",
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    # Indexed for the dashboard's daily figures (confirmations per day).
    confirmed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    unsubscribed_at = models.DateTimeField(
        "left at",
        null=True,
        blank=True,
        db_index=True,
        help_text="When they left the list: they unsubscribed, or were taken off it "
        "for a hard bounce or a spam complaint.",
    )

    # The consent record: when, from where and under which wording they agreed.
    consent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the person asked to subscribe."
    )
    consent_ip = models.GenericIPAddressField(
        null=True, blank=True, help_text="IP address of that request."
    )
    consent_user_agent = models.CharField(max_length=500, blank=True)
    consent_source = models.CharField(
        max_length=200,
        blank=True,
        help_text="The form (e.g. 'form:/subscribe/') or import "
        "(e.g. 'import:substack:export.csv') the consent came from.",
    )
    consent_text_version = models.CharField(
        max_length=50,
        blank=True,
        help_text="Version of the publication's consent text they saw.",
    )

    # Double opt-in bookkeeping: the nonce in the pending confirmation link (cleared
    # once used, so the link works once) and when the last such email went out.
    confirmation_nonce = models.CharField(max_length=32, blank=True, editable=False)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_login_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="subscriber_email_ci_unique",
                violation_error_message="A subscriber with this address already "
                "exists.",
            ),
            models.UniqueConstraint(fields=["token"], name="subscriber_token_unique"),
        ]
        indexes = [
            models.Index(fields=["email"], name="subscriber_email_idx"),
            models.Index(fields=["email_hash"], name="subscriber_email_hash_idx"),
            models.Index(fields=["status"], name="subscriber_status_idx"),
            # The report counts the signups an issue's page brought (its form or
            # checkout names the page).
            models.Index(fields=["consent_source"], name="subscriber_source_idx"),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        # The services and forms hand over the stored form already; normalising
        # again here is a safety net, since uniqueness and the suppression hash
        # depend on it. Raises InvalidAddress for text that is not an address.
        self.email = normalise_email(self.email)
        self.email_hash = hash_email(self.email)
        super().save(*args, **kwargs)


class Suppression(models.Model):
    """An address that must never be mailed or imported again, kept only as a hash."""

    class Reason(models.TextChoices):
        BOUNCED = "bounced", "Hard bounce"
        COMPLAINED = "complained", "Spam complaint"
        DELETED = "deleted", "Deleted at the person's request"

    email_hash = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.email_hash[:12]}… ({self.get_reason_display()})"
