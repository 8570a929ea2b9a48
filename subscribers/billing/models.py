"""Paid tiers: what supporters can buy (Tier), what each one has (Membership), and
every Stripe event received (StripeEvent), stored once."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Sum, When
from django.urls import reverse
from django.utils import timezone

from newsletter.mail import validate_one_line
from subscribers.models import Subscriber


def new_feed_token() -> str:
    """Return a new secret for a member's private feed address."""
    return secrets.token_urlsafe(24)


def grace_period() -> timedelta:
    """Return how long a past-due member keeps paid access."""
    return timedelta(days=settings.BILLING_GRACE_PERIOD_DAYS)


class TierQuerySet(models.QuerySet):
    def active(self) -> "TierQuerySet":
        """Return the tiers readers can subscribe to."""
        return self.filter(active=True)


class Tier(models.Model):
    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    name = models.CharField(
        max_length=100,
        validators=[validate_one_line],
        help_text="Shown on the pricing page and in the subject of members' emails.",
    )
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(
        blank=True, help_text="One or two sentences under the tier's name."
    )
    benefits = models.TextField(
        blank=True,
        help_text="What supporters get, one benefit per line; shown as a list.",
    )
    currency = models.CharField(
        max_length=3,
        default="usd",
        help_text="Three-letter ISO code in lower case, e.g. usd, eur, gbp.",
    )
    monthly_amount = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Monthly price in the currency's smallest unit (cents): 800 is "
        "8.00. Leave empty to offer no monthly price.",
    )
    yearly_amount = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Yearly price in cents: 8000 is 80.00. For the founding member "
        "tier this is the lowest amount a supporter may choose.",
    )
    stripe_product_id = models.CharField(
        "Stripe product id",
        max_length=100,
        blank=True,
        help_text="Filled by `manage.py sync_stripe_tiers`; paste one to link an "
        "existing Stripe product.",
    )
    stripe_monthly_price_id = models.CharField(
        "Stripe monthly price id",
        max_length=100,
        blank=True,
        help_text="Filled by `manage.py sync_stripe_tiers`, or an existing price id.",
    )
    stripe_yearly_price_id = models.CharField(
        "Stripe yearly price id",
        max_length=100,
        blank=True,
        help_text="Filled by `manage.py sync_stripe_tiers`, or an existing price id.",
    )
    active = models.BooleanField(
        default=True, help_text="Inactive tiers leave the pricing page."
    )
    trial_days = models.PositiveSmallIntegerField(
        default=0, help_text="Days of free trial before the first payment; 0 for none."
    )
    is_founding = models.BooleanField(
        "founding member tier",
        default=False,
        help_text="A yearly tier where supporters choose to pay more than the yearly "
        "price. Only one tier can be the founding member tier.",
    )
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Tiers are shown in this order, lowest first."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = TierQuerySet.as_manager()

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_founding"],
                condition=Q(is_founding=True),
                name="billing_one_founding_tier",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def benefit_list(self) -> list[str]:
        return [line.strip() for line in self.benefits.splitlines() if line.strip()]

    def amount_for(self, interval: str) -> int | None:
        return (
            self.monthly_amount
            if interval == self.Interval.MONTH
            else (self.yearly_amount)
        )

    def price_id_for(self, interval: str) -> str:
        if interval == self.Interval.MONTH:
            return self.stripe_monthly_price_id
        return self.stripe_yearly_price_id

    @property
    def intervals(self) -> list[str]:
        """Return the billing intervals this tier offers."""
        if self.is_founding:
            return [self.Interval.YEAR] if self.yearly_amount else []
        return [
            interval
            for interval in (self.Interval.MONTH, self.Interval.YEAR)
            if self.amount_for(interval)
        ]


class MembershipQuerySet(models.QuerySet["Membership"]):
    def with_paid_access(self, *, now=None) -> "MembershipQuerySet":
        """Return memberships that open the paywall right now."""
        return self.filter(paid_access_q(now=now))

    def of(self, subscriber) -> "Membership | None":
        """Return the subscriber's membership with its tier, or None."""
        return self.select_related("tier").filter(subscriber=subscriber).first()

    def paying(self) -> "MembershipQuerySet":
        """Return memberships paid through Stripe (not complimentary)."""
        return self.filter(
            status__in=[Membership.Status.ACTIVE, Membership.Status.PAST_DUE]
        )

    def monthly_revenue(self) -> dict[str, int]:
        """Return what these memberships bring in a month, in cents per currency
        (a yearly amount counts as a twelfth); one grouped query."""
        per_month = Case(
            When(interval=Tier.Interval.MONTH, then=F("amount")),
            default=F("amount") / 12,
        )
        rows = (
            self.filter(amount__gt=0)
            .values("currency")
            .annotate(total=Sum(per_month))
            .order_by("currency")
        )
        return {row["currency"]: row["total"] for row in rows}


def paid_access_q(*, now=None, prefix: str = "") -> Q:
    """Return a filter on Membership (or, with a prefix, a related model) that
    selects those with paid access at ``now``."""
    now = now or timezone.now()
    p = prefix
    return (
        Q(**{f"{p}status__in": [Membership.Status.ACTIVE, Membership.Status.TRIALING]})
        | Q(
            **{
                f"{p}status": Membership.Status.PAST_DUE,
                f"{p}past_due_since__gt": now - grace_period(),
            }
        )
        | (
            Q(**{f"{p}complimentary": True})
            & (
                Q(**{f"{p}complimentary_until__isnull": True})
                | Q(**{f"{p}complimentary_until__gt": now})
            )
        )
    )


class Membership(models.Model):
    class Status(models.TextChoices):
        NONE = "", "No subscription"
        INCOMPLETE = "incomplete", "Incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"
        UNPAID = "unpaid", "Unpaid"
        PAUSED = "paused", "Paused"

    subscriber = models.OneToOneField(
        Subscriber, on_delete=models.CASCADE, related_name="membership"
    )
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, blank=True, default="", db_index=True
    )
    stripe_customer_id = models.CharField(
        "Stripe customer id", max_length=100, blank=True, db_index=True
    )
    stripe_subscription_id = models.CharField(
        "Stripe subscription id", max_length=100, blank=True, db_index=True
    )
    stripe_price_id = models.CharField("Stripe price id", max_length=100, blank=True)
    amount = models.PositiveIntegerField(
        null=True, blank=True, help_text="What the member pays per interval, in cents."
    )
    currency = models.CharField(max_length=3, blank=True)
    interval = models.CharField(
        max_length=10, choices=Tier.Interval.choices, blank=True
    )
    current_period_end = models.DateTimeField(
        null=True, blank=True, help_text="The next payment (or the end, if canceling)."
    )
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a payment first failed; access continues for the grace "
        "period after it.",
    )
    canceled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    complimentary = models.BooleanField(
        default=False,
        help_text="Paid access granted without payment, e.g. for a collaborator.",
    )
    complimentary_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a complimentary membership ends; empty for no end.",
    )
    # The moment of the Stripe state last written here: a state read from Stripe
    # before it is never applied over it, whatever order events arrive in.
    stripe_synced_at = models.DateTimeField(null=True, blank=True)
    welcome_sent_at = models.DateTimeField(null=True, blank=True)
    ended_sent_at = models.DateTimeField(null=True, blank=True)
    # The secret in the member's private feed address, made with the membership;
    # the feed opens only while the membership gives paid access.
    feed_token = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        editable=False,
        default=new_feed_token,
    )
    # "<invoice id>:<attempt count>" of the last payment-failed email sent.
    last_failed_invoice_attempt = models.CharField(max_length=120, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.subscriber} ({self.get_status_display() or 'complimentary'})"

    def has_paid_access(self, *, now=None) -> bool:
        now = now or timezone.now()
        if self.status in (self.Status.ACTIVE, self.Status.TRIALING):
            return True
        if (
            self.status == self.Status.PAST_DUE
            and self.past_due_since
            and self.past_due_since > now - grace_period()
        ):
            return True
        return self.complimentary and (
            self.complimentary_until is None or self.complimentary_until > now
        )

    @property
    def is_stripe_member(self) -> bool:
        return bool(self.stripe_subscription_id) and self.status not in (
            self.Status.NONE,
            self.Status.CANCELED,
            self.Status.INCOMPLETE_EXPIRED,
        )


# How long a stored event may wait for its task before the reconciler queues it
# again (a broker that was down, a message lost with a flushed Redis).
STRIPE_EVENT_REQUEUE_AFTER = timedelta(minutes=1)


def first_retry_at():
    """Return when a Stripe event stored now is queued again if still waiting."""
    return timezone.now() + STRIPE_EVENT_REQUEUE_AFTER


class StripeEventQuerySet(models.QuerySet):
    def stuck(self, *, now=None) -> "StripeEventQuerySet":
        """Return events still waiting to be applied whose retry time has passed."""
        return self.filter(
            status=StripeEvent.Status.RECEIVED, retry_at__lte=now or timezone.now()
        )


class StripeEvent(models.Model):
    """One Stripe event, stored once: a delivery seen before changes nothing."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=100, blank=True, db_index=True)
    created_at = models.DateTimeField(help_text="When Stripe created the event.")
    payload = models.JSONField()
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(
        default=first_retry_at,
        help_text="While the event is Received: when Quire queues it again if it "
        "has not been applied by then (every minute, or after Stripe's retry "
        "delay when Stripe could not be reached).",
    )

    objects = StripeEventQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["retry_at"],
                condition=Q(status="received"),
                name="billing_stripeevent_stuck_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"

    def get_absolute_url(self) -> str:
        return reverse("admin:billing_stripeevent_change", args=[self.pk])


class CheckoutClaimQuerySet(models.QuerySet):
    def waiting(self) -> "CheckoutClaimQuerySet":
        """Return paid checkouts whose address has not confirmed them yet."""
        return self.filter(claimed_at__isnull=True)


class CheckoutClaim(models.Model):
    """A subscription paid by someone who had not proven the address was theirs.

    Held here, attached to no membership, until the address's owner follows the
    link emailed to it; that proof keeps a stranger from attaching a subscription
    (and a Stripe customer) to somebody else's membership.
    """

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="checkout_claims"
    )
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stripe_session_id = models.CharField(
        "Stripe Checkout Session id", max_length=100, unique=True
    )
    stripe_subscription_id = models.CharField("Stripe subscription id", max_length=100)
    stripe_customer_id = models.CharField(
        "Stripe customer id", max_length=100, blank=True
    )
    # The nonce in the emailed link; cleared once used, so the link works once.
    nonce = models.CharField(max_length=32, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the address's owner confirmed the membership; empty while "
        "the subscription is paid but attached to nobody.",
    )

    objects = CheckoutClaimQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name = "checkout awaiting confirmation"
        verbose_name_plural = "checkouts awaiting confirmation"

    def __str__(self) -> str:
        return f"{self.subscriber} ({self.stripe_subscription_id})"
