import email.utils
import logging

from django.conf import settings
from django.core.validators import FileExtensionValidator
from django.db import models

from .images import image_size
from .mail import (
    clean_header_text,
    sending_address,
    validate_one_line,
    validate_sender_address,
)

logger = logging.getLogger(__name__)


class Heartbeat(models.Model):
    """The last time a Celery worker proved it was alive by running a task."""

    name = models.CharField(max_length=100, unique=True)
    beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class Publication(models.Model):
    """The publication's own settings: one row, edited in the admin."""

    name = models.CharField(
        max_length=200, default="Quire", validators=[validate_one_line]
    )
    description = models.TextField(blank=True)
    author_name = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_one_line],
        help_text="Who writes the issues, shown under each issue's title (“By …”) "
        "and given as its author to search engines. Empty: no byline.",
    )
    author_photo = models.ImageField(
        upload_to="authors/",
        blank=True,
        validators=[
            FileExtensionValidator(
                ["jpg", "jpeg", "png", "gif", "webp"],
                message="Use a JPEG, PNG, GIF or WebP image; %(extension)s files "
                "do not show in every browser.",
            )
        ],
        help_text="Optional; shown small and round next to the byline. A square "
        "photo of 200×200 pixels or more works best.",
    )
    # Read when the photo is saved (images.image_size), never per page.
    author_photo_width = models.PositiveIntegerField(
        null=True, blank=True, editable=False
    )
    author_photo_height = models.PositiveIntegerField(
        null=True, blank=True, editable=False
    )
    author_photo_alt = models.CharField(
        "author photo description",
        max_length=300,
        blank=True,
        help_text="What the photo shows, for readers who cannot see it. Leave it "
        "empty if it only repeats the name printed next to it.",
    )
    sender_name = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_one_line],
        help_text="The name readers see as the sender. Empty: the name of "
        "DEFAULT_FROM_EMAIL, or else the publication's name.",
    )
    sender_email = models.EmailField(
        blank=True,
        validators=[validate_sender_address],
        help_text="The address every email comes from and replies go to. Empty: "
        "DEFAULT_FROM_EMAIL, from the server's settings.",
    )
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
    track_opens = models.BooleanField(
        "count opens",
        default=True,
        help_text="Issue emails carry an invisible image that says when one is "
        "opened. Subscribers who turned tracking off get none. The subscribe "
        "forms say so while this is on.",
    )
    track_clicks = models.BooleanField(
        "count clicks",
        default=True,
        help_text="Links in issue emails pass through this site, which counts the "
        "click and sends the reader on. Subscribers who turned tracking off get "
        "the plain links.",
    )

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.author_photo_width, self.author_photo_height = image_size(
            self.author_photo,
            known=(self.author_photo_width, self.author_photo_height),
        )
        super().save(*args, **kwargs)

    @property
    def sender_address(self) -> str:
        """Return the address every email is sent from, in its ASCII form."""
        return self._sender()[1]

    @property
    def sender_display_name(self) -> str:
        """Return the name every email is sent by (a newsletter may have its own)."""
        return self._sender()[0]

    @property
    def from_header(self) -> str:
        """Return the From of every email Quire sends: ``Sender Name <address>``."""
        return email.utils.formataddr(self._sender(), "utf-8")

    def _sender(self) -> tuple[str, str]:
        default_name, default_address = email.utils.parseaddr(
            settings.DEFAULT_FROM_EMAIL
        )
        address = sending_address(self.sender_email)
        if address is None:
            if self.sender_email:
                # Stored by an older version or straight into the database: mail
                # must still go out, from the server's address.
                logger.warning(
                    "The publication's sender address %r cannot be sent from; "
                    "using DEFAULT_FROM_EMAIL. Correct it in the admin.",
                    self.sender_email,
                )
            address = sending_address(default_address) or "quire@localhost"
            name = self.sender_name or default_name or self.name
        else:
            name = self.sender_name or self.name
        # One line whatever is stored: no header injection through the name.
        return clean_header_text(name), address

    @classmethod
    def load(cls) -> "Publication":
        """Return the publication's settings, creating them on first use."""
        publication, _ = cls.objects.get_or_create(pk=1)
        return publication


class ContentVersion(models.Model):
    """One row whose number goes up with every change readers could see.

    Pages cached for anonymous readers (issues.pagecache) are kept per version:
    every server process reads this row at most once per QUIRE_PAGE_RECHECK_SECONDS
    and drops every page at once when the number moved. The number is raised by an
    UPDATE in the transaction of the change itself, so a page rendered after the
    change commits never carries the old number.
    """

    version = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"content version {self.version}"


class Newsletter(models.Model):
    """One of the publication's lists (the monthly issue, occasional announcements).

    Every issue belongs to one; subscribers choose which they receive
    (subscribers.Subscription). There is always at least one: the first by position
    is the default, created with the publication's name when none exists.
    """

    name = models.CharField(
        max_length=100,
        validators=[validate_one_line],
        help_text="What readers see on the subscribe form and in their preferences.",
    )
    slug = models.SlugField(
        max_length=60,
        unique=True,
        help_text="Short name in addresses and the List-Id; avoid changing it.",
    )
    description = models.CharField(
        max_length=300,
        blank=True,
        help_text="One sentence on what this newsletter sends and how often.",
    )
    sender_name = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_one_line],
        help_text="The From name of this newsletter's emails. Empty: the "
        "publication's sender name.",
    )
    list_id = models.CharField(
        "List-Id",
        max_length=200,
        blank=True,
        validators=[validate_one_line],
        help_text="The identifier mail clients group and filter this list by "
        "(RFC 2919), e.g. monthly.example.org. Empty: the slug at the sender's "
        "domain.",
    )
    join_by_default = models.BooleanField(
        default=True,
        help_text="New subscribers join it unless they choose otherwise on the "
        "subscribe form.",
    )
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Order on forms and in preferences; the first is the "
        "default newsletter of new issues."
    )  # fmt: skip
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def default(cls) -> "Newsletter":
        """Return the first newsletter, creating one named after the publication."""
        first = cls.objects.order_by("position", "pk").first()
        if first is None:
            name = Publication.load().name or "Newsletter"
            first, _ = cls.objects.get_or_create(
                slug="newsletter", defaults={"name": name[:100]}
            )
        return first


def default_newsletter_id() -> int:
    """The default newsletter's id: the default of Issue.newsletter."""
    return Newsletter.default().pk
