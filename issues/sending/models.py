"""Sends and deliveries: the database is the source of truth for every email."""

from django.db import models
from django.db.models import Count, Q


class Send(models.Model):
    """The emailing of one issue to its frozen audience (at most one per issue)."""

    class Status(models.TextChoices):
        PREPARING = "preparing", "Preparing"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"

    issue = models.OneToOneField(
        "issues.Issue", on_delete=models.PROTECT, related_name="send"
    )
    status = models.CharField(
        max_length=20,
        choices=Status.choices,
        default=Status.PREPARING,
        db_index=True,
        help_text="Preparing: the audience is being frozen. Sending: workers are "
        "emailing it. Paused: nothing more goes out until you resume. Done: every "
        "recipient was handled.",
    )
    total = models.PositiveIntegerField(
        default=0, help_text="Recipients frozen when the send started."
    )
    sent_count = models.PositiveIntegerField("sent", default=0)
    failed_count = models.PositiveIntegerField("failed", default=0)
    bounced_count = models.PositiveIntegerField("bounced", default=0)
    skipped_count = models.PositiveIntegerField(
        "skipped", default=0, help_text="Unsubscribed before their email went out."
    )
    resolved_after_crash = models.PositiveIntegerField(
        default=0,
        help_text="Emails that were being handed to the mail server when a worker "
        "died; they were sent again, so these few recipients may have it twice.",
    )
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    paused_reason = models.TextField(
        blank=True,
        help_text="Why Quire paused this send by itself (a worker kept dying on it, "
        "or too many complaints or hard bounces). Fix what it names, then resume; "
        "resuming clears it.",
    )
    # The deliverability guard's counters (guard.py): each added to with F() in the
    # transaction that records the email's outcome or the provider's event, once
    # per delivery, never recounted from the deliveries.
    accepted_count = models.PositiveIntegerField(
        "accepted",
        default=0,
        help_text="Emails the mail server or provider accepted: the complaint "
        "rate is complaints out of these.",
    )
    refused_count = models.PositiveIntegerField(
        "refused",
        default=0,
        help_text="Hard bounces while sending: the mail server refused the address "
        "for good (5xx).",
    )
    reported_bounce_count = models.PositiveIntegerField(
        "reported bounces",
        default=0,
        help_text="Emails accepted, then reported by the provider as hard bounces.",
    )
    complaint_count = models.PositiveIntegerField(
        "complaints",
        default=0,
        help_text="Recipients who marked the email as spam (reported by the "
        "provider), each counted once.",
    )
    # The complaints and hard bounces when the author last resumed: the guard
    # pauses again only once there are more (guard.verdict).
    complaints_at_resume = models.PositiveIntegerField(default=0, editable=False)
    bounces_at_resume = models.PositiveIntegerField(default=0, editable=False)
    # Bumped whenever a worker claims a batch; the reconciler restarts a send whose
    # heartbeat stopped while work is left (its broker messages were lost).
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Renderings of the email begun and never finished. Counted (and committed)
    # before each one starts, reset when one is stored: a worker killed while
    # rendering (a crash in the CSS inliner) leaves it raised, so the next attempt
    # knows, and at SENDING_MAX_WORKER_CRASHES the send pauses instead of rendering.
    render_attempts = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"Send of {self.issue}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PREPARING, self.Status.SENDING)

    @property
    def hard_bounce_count(self) -> int:
        """Refused while sending, or reported bounced by the provider afterwards."""
        return self.refused_count + self.reported_bounce_count

    @property
    def attempted_count(self) -> int:
        """Emails the mail server accepted or refused as a hard bounce."""
        return self.accepted_count + self.refused_count


class DeliveryQuerySet(models.QuerySet):
    def counts(self) -> dict[str, int]:
        """Return the number of deliveries per status, every status present."""
        counts = dict.fromkeys(Delivery.Status.values, 0)
        for row in self.values("status").annotate(n=Count("pk")).order_by():
            counts[row["status"]] = row["n"]
        return counts

    def unresolved(self) -> "DeliveryQuerySet":
        return self.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING])

    def problems(self) -> "DeliveryQuerySet":
        return self.filter(
            Q(status__in=[Delivery.Status.FAILED, Delivery.Status.BOUNCED])
            | Q(possibly_duplicate=True)
        )


class Delivery(models.Model):
    """One recipient of one send, with the outcome of its email."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"
        SKIPPED = "skipped", "Skipped"

    class Segment(models.TextChoices):
        FREE = "free", "Free"
        PAID = "paid", "Paid"

    # No index of its own: the claim index and the unique constraint both start
    # with the send, and every row is written three times during its send.
    send = models.ForeignKey(
        Send, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    subscriber = models.ForeignKey(
        "subscribers.Subscriber",
        on_delete=models.SET_NULL,
        null=True,
        related_name="deliveries",
    )
    # Frozen with the audience: the address the email went (or goes) to.
    email = models.EmailField(max_length=254)
    segment = models.CharField(
        max_length=10, choices=Segment.choices, default=Segment.FREE
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # A worker holds a queued row while it works through its batch; the lease runs
    # out at claimed_at + SENDING_LEASE_SECONDS, after which the reconciler frees it.
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Retries after a transient failure wait until then.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the provider reported that the recipient marked this email "
        "as spam.",
    )
    possibly_duplicate = models.BooleanField(
        default=False,
        help_text="A worker died while handing this email to the mail server; it was "
        "sent again and may have arrived twice.",
    )
    # Times a worker died while this row was "sending" (counted by the reconciler):
    # at SENDING_MAX_WORKER_CRASHES the row fails instead of killing another worker.
    crashes = models.PositiveSmallIntegerField(default=0, editable=False)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["send", "subscriber"], name="unique_delivery_per_subscriber"
            )
        ]
        indexes = [
            models.Index(fields=["send", "status", "id"], name="delivery_claim_idx"),
            models.Index(fields=["send", "sent_at"], name="delivery_rate_idx"),
            models.Index(fields=["message_id"], name="delivery_message_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_status_display()})"


class RenderedEmail(models.Model):
    """A send's email for one audience segment, rendered once for every worker.

    Batch tasks, in any worker process on any machine, load these rows instead of
    rendering: per recipient only substitutions happen.
    """

    send = models.ForeignKey(
        Send, on_delete=models.CASCADE, related_name="rendered_emails"
    )
    segment = models.CharField(max_length=10, choices=Delivery.Segment.choices)
    # The issue's `updated` when this was rendered: an edit made during the send is
    # rendered again (once) and goes to the recipients not yet reached.
    issue_updated = models.DateTimeField()
    rendered_at = models.DateTimeField()
    html = models.TextField()
    text = models.TextField()
    # The rest of the prepared email: subject, headers, boundary, link parts.
    headers = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["send", "segment"], name="unique_rendered_email_per_segment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.send} ({self.get_segment_display()})"


class EmailEvent(models.Model):
    """A tracking event from the email provider, kept once per event id."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=30, db_index=True)
    email = models.EmailField(max_length=254, db_index=True)
    message_id = models.CharField(max_length=255, blank=True)
    esp = models.CharField(max_length=50, blank=True)
    description = models.TextField(blank=True)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_type} for {self.email}"


class WelcomeStep(models.Model):
    """One email of a newsletter's welcome sequence, sent a delay after a
    subscriber confirms.

    Its content is an Issue of kind "welcome" (same renderer and email pipeline,
    never on the site), and its emails are that issue's Send: one Delivery per
    subscriber, added as subscribers come due, so each gets the step at most once.
    """

    class Condition(models.TextChoices):
        EVERYONE = "", "Everyone"
        FREE = "free", "Free subscribers only"
        NOT_PAID = "unpaid", "Not yet paying"

    newsletter = models.ForeignKey(
        "newsletter.Newsletter", on_delete=models.CASCADE, related_name="welcome_steps"
    )
    issue = models.OneToOneField(
        "issues.Issue", on_delete=models.CASCADE, related_name="welcome_step"
    )
    delay = models.DurationField(
        help_text="How long after they confirm it goes out, e.g. 0, 3 days, 10 days."
    )
    condition = models.CharField(
        max_length=10, choices=Condition.choices, blank=True, default=""
    )
    active = models.BooleanField(
        default=False,
        help_text="Sent only while active, and only to those who confirm after it "
        "was first made active.",
    )
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["newsletter", "delay", "pk"]
        # What the author calls them in the admin's menu.
        verbose_name = "welcome email"
        verbose_name_plural = "welcome emails"

    def __str__(self) -> str:
        return f"{self.newsletter}: {self.issue} (+{self.delay})"
