"""The dashboard's daily figures: a row per day (and currency), filled by beat."""

from django.db import models


class DailyGrowth(models.Model):
    """The audience on one day in the publication's time zone: flows and the total."""

    day = models.DateField(unique=True)
    new = models.PositiveIntegerField(default=0, help_text="Subscribers created.")
    new_form = models.PositiveIntegerField(default=0)
    new_import = models.PositiveIntegerField(default=0)
    new_admin = models.PositiveIntegerField(default=0)
    new_checkout = models.PositiveIntegerField(default=0)
    confirmed = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(
        default=0,
        help_text="Confirmed subscribers who left that day: unsubscribed, or taken off "
        "the list for a hard bounce or a spam complaint.",
    )
    subscribers = models.PositiveIntegerField(
        default=0,
        help_text="Confirmed and not left (see unsubscribed) at the day's end.",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["day"]
        verbose_name = "daily growth figure"
        permissions = [("view_growth", "Can see growth and revenue figures")]

    def __str__(self) -> str:
        return f"Growth on {self.day}"

    @property
    def net(self) -> int:
        return self.confirmed - self.unsubscribed


class DailyRevenue(models.Model):
    """Paid members and monthly recurring revenue on one day, per currency."""

    day = models.DateField()
    currency = models.CharField(max_length=3)
    paid_members = models.PositiveIntegerField(default=0)
    mrr = models.PositiveIntegerField(
        default=0,
        help_text="Monthly recurring revenue at the day's end, in the currency's "
        "smallest unit; a yearly plan counts a twelfth.",
    )
    new_paid = models.PositiveIntegerField(default=0)
    churned = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["day", "currency"]
        verbose_name = "daily revenue figure"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "currency"], name="daily_revenue_day_currency"
            )
        ]

    def __str__(self) -> str:
        return f"Revenue on {self.day} ({self.currency})"
