import hashlib
import secrets

from django.db import connection, models
from django.db.models import Exists, OuterRef, Subquery
from django.db.models.functions import Lower

from newsletter.models import Newsletter

from .addresses import address_key, normalise_email


def new_token() -> str:
    """Return a random opaque token for links in emails."""
    return secrets.token_urlsafe(24)


def hash_email(email: str) -> str:
    """Return the hex SHA-256 of the address in its stored form (the suppression
    key)."""
    return hashlib.sha256(address_key(email).encode()).hexdigest()


class SubscriberQuerySet(models.QuerySet):
    def receiving(
        self, newsletter: int | Subquery | None = None
    ) -> "SubscriberQuerySet":
        """Return who gets the next issue: active, not paused and not suppressed,
        and, given a newsletter (its id, or a subquery of it), subscribed to it.

        A plain set-based filter (no evaluation): an audience is frozen from it
        with one INSERT ... SELECT.
        """
        receiving = self.filter(status=Subscriber.Status.ACTIVE, paused=False).exclude(
            Exists(Suppression.objects.filter(email_hash=OuterRef("email_hash")))
        )
        if newsletter is not None:
            receiving = receiving.filter(
                Exists(
                    Subscription.objects.filter(
                        subscriber=OuterRef("pk"), newsletter=newsletter
                    )
                )
            )
        return receiving


class Label(models.Model):
    """A word the author puts on subscribers (by hand, on import, in bulk) to
    build segments from."""

    name = models.CharField(max_length=60, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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

    newsletters = models.ManyToManyField(
        Newsletter,
        through="Subscription",
        blank=True,
        related_name="subscribers",
        help_text="The newsletters they receive.",
    )
    labels = models.ManyToManyField(Label, blank=True, related_name="subscribers")

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
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            # A new subscriber joins the newsletters new subscribers join; a form
            # that offers a choice replaces these afterwards.
            Subscription.join_defaults(
                Subscriber.objects.filter(pk=self.pk).values("pk")
            )


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


class Subscription(models.Model):
    """A subscriber receives a newsletter: one row per pair, deleted on leaving it."""

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="subscriptions"
    )
    newsletter = models.ForeignKey(
        Newsletter, on_delete=models.CASCADE, related_name="subscriptions"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["newsletter", "subscriber"], name="subscription_unique"
            )
        ]
        indexes = [
            models.Index(fields=["subscriber"], name="subscription_subscriber_idx")
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} in {self.newsletter_id}"

    @classmethod
    def join_defaults(cls, subscribers: models.QuerySet) -> int:
        """Put the subscribers (a query of their ids) in every newsletter new
        subscribers join, set-based; pairs that exist already are kept. Returns the
        number of rows written."""
        # There is always a newsletter to join (the default is made when none is).
        Newsletter.default()
        return cls.join(
            subscribers,
            Newsletter.objects.filter(join_by_default=True).values("pk"),
        )

    @classmethod
    def join(cls, subscribers: models.QuerySet, newsletters: models.QuerySet) -> int:
        """Subscribe every subscriber of one query of ids to every newsletter of
        another: one INSERT ... SELECT of the pairs not there yet."""
        # The ORM has no cross join: the pairs are made in SQL, from the two
        # compiled queries; every value is a parameter.
        sub_sql, sub_params = subscribers.query.sql_with_params()
        news_sql, news_params = newsletters.query.sql_with_params()
        quote = connection.ops.quote_name
        table = quote(cls._meta.db_table)
        people = quote(Subscriber._meta.db_table)
        lists = quote(Newsletter._meta.db_table)
        sql = (
            f"INSERT INTO {table} (subscriber_id, newsletter_id, created) "  # noqa: S608
            f"SELECT s.id, n.id, CURRENT_TIMESTAMP FROM {people} s "
            f"CROSS JOIN {lists} n WHERE s.id IN ({sub_sql}) AND n.id IN ({news_sql}) "
            f"AND NOT EXISTS (SELECT 1 FROM {table} x "
            "WHERE x.subscriber_id = s.id AND x.newsletter_id = n.id)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*sub_params, *news_params])
            return cursor.rowcount


class Segment(models.Model):
    """A saved group of subscribers: every condition set must hold.

    Resolved to one set-based query (subscribers.segments); an issue sent to a
    segment freezes exactly the subscribers it matches at that moment.
    """

    class Membership(models.TextChoices):
        ANY = "", "Anyone"
        FREE = "free", "Free subscribers (no paid or complimentary membership)"
        PAID = "paid", "Paying or complimentary members"
        PAYING = "paying", "Paying members"
        COMPLIMENTARY = "complimentary", "Complimentary members"

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    newsletter = models.ForeignKey(
        Newsletter,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only subscribers of this newsletter. Empty: of any.",
    )
    labels = models.ManyToManyField(
        Label,
        blank=True,
        related_name="segments",
        help_text="Only subscribers with at least one of these labels.",
    )
    membership = models.CharField(
        max_length=20, choices=Membership.choices, blank=True, default=""
    )
    source = models.CharField(
        "signup source",
        max_length=10,
        choices=Subscriber.Source.choices,
        blank=True,
        help_text="Only subscribers who came this way. Empty: any.",
    )
    joined_after = models.DateField(
        null=True, blank=True, help_text="Only those who subscribed on or after."
    )
    joined_before = models.DateField(
        null=True, blank=True, help_text="Only those who subscribed before."
    )
    engaged_in_last = models.PositiveSmallIntegerField(
        "opened or clicked in the last",
        null=True,
        blank=True,
        help_text="Only those who opened or clicked (as a person, not a machine) "
        "at least one of this many last issues sent. Empty: anyone.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
