import email.utils

from django.db import models


class Heartbeat(models.Model):
    """The last time a Celery worker proved it was alive by running a task."""

    name = models.CharField(max_length=100, unique=True)
    beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class Publication(models.Model):
    """The publication's own settings: one row, edited in the admin."""

    name = models.CharField(max_length=200, default="Quire")
    description = models.TextField(blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    sender_email = models.EmailField(default="newsletter@localhost")
    postal_address = models.TextField(blank=True)
    welcome_email = models.TextField(
        blank=True,
        help_text="Sent once a subscriber confirms. Plain text; blank lines separate "
        "paragraphs. Leave empty for a short default greeting.",
    )
    consent_text = models.TextField(
        blank=True,
        default="By subscribing you agree to receive this newsletter by email. "
        "Every email has a link to unsubscribe at once.",
        help_text="Shown under every subscribe form. Each subscriber's consent "
        "record keeps the version they saw.",
    )
    consent_text_version = models.PositiveIntegerField(
        default=1,
        help_text="Goes up by one each time the consent text is changed in the admin.",
    )

    def __str__(self) -> str:
        return self.name

    @property
    def from_header(self) -> str:
        """Return the From of every email Quire sends: ``Sender Name <address>``."""
        from .mail import clean_header_text

        # One line whatever the admin typed: no header injection through the name.
        name = clean_header_text(self.sender_name or self.name)
        return email.utils.formataddr((name, self.sender_email), "utf-8")

    @classmethod
    def load(cls) -> "Publication":
        """Return the publication's settings, creating them on first use."""
        publication, _ = cls.objects.get_or_create(pk=1)
        return publication
