"""Every hit once (Event), who did what once (Activity), and the daily figures."""

from django.db import models


class Kind(models.TextChoices):
    OPEN = "open", "Open"
    CLICK = "click", "Click"
    VIEW = "view", "Web view"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
    DELIVERED = "delivered", "Delivered (provider)"
    BOUNCED = "bounced", "Bounced (provider)"
    COMPLAINED = "complained", "Complaint (provider)"


class Event(models.Model):
    """One hit as it was recorded, kept once whatever the flush retries."""

    # Made when the hit was buffered (or the provider's event id): a flush that
    # runs twice over the same hits inserts nothing the second time.
    hit_id = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField()
    issue = models.ForeignKey(
        "issues.Issue", on_delete=models.CASCADE, null=True, related_name="+"
    )
    delivery_id = models.BigIntegerField(null=True, blank=True)
    link = models.ForeignKey("Link", on_delete=models.CASCADE, null=True, blank=True)
    machine = models.BooleanField(default=False)
    reason = models.CharField(
        max_length=40, blank=True, help_text="The rule that called it a machine."
    )
    source = models.CharField(max_length=20, default="quire")

    class Meta:
        indexes = [models.Index(fields=["issue", "at"], name="analytics_event_issue")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.issue_id} at {self.at}"


class Link(models.Model):
    """One link of an issue's email, and the paper it points at, if any."""

    issue = models.ForeignKey(
        "issues.Issue", on_delete=models.CASCADE, related_name="tracked_links"
    )
    number = models.PositiveIntegerField()
    url = models.URLField(max_length=2000)
    paper = models.ForeignKey(
        "issues.Paper",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tracked_links",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issue", "number"], name="analytics_link_unique"
            )
        ]

    def __str__(self) -> str:
        return self.url


class Activity(models.Model):
    """What one delivery did first, so that unique figures count it once."""

    delivery_id = models.BigIntegerField(primary_key=True)
    issue = models.ForeignKey(
        "issues.Issue", on_delete=models.CASCADE, related_name="+"
    )
    first_human_open = models.DateTimeField(null=True)
    first_machine_open = models.DateTimeField(null=True)
    first_human_click = models.DateTimeField(null=True)
    first_machine_click = models.DateTimeField(null=True)
    # Links this delivery followed (as numbers), to tell "clicked every link" and
    # to count unique clicks per link.
    links = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"delivery {self.delivery_id}"


class DailyIssueStat(models.Model):
    """An issue's figures for one day (UTC): what every report reads."""

    issue = models.ForeignKey(
        "issues.Issue", on_delete=models.CASCADE, related_name="daily_stats"
    )
    day = models.DateField()
    delivered = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complaints = models.PositiveIntegerField(default=0)
    opens = models.PositiveIntegerField(default=0, help_text="Human opens, all.")
    unique_opens = models.PositiveIntegerField(default=0)
    machine_opens = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0, help_text="Human clicks, all.")
    unique_clicks = models.PositiveIntegerField(default=0)
    machine_clicks = models.PositiveIntegerField(default=0)
    unsubscribes = models.PositiveIntegerField(default=0)
    web_views = models.PositiveIntegerField(default=0)
    web_visitors = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issue", "day"], name="analytics_daily")
        ]
        permissions = [("view_report", "Can see how issues did")]

    def __str__(self) -> str:
        return f"{self.issue_id} on {self.day}"


class HourlyIssueStat(models.Model):
    """Unique human opens and clicks per hour, for the first hours after sending."""

    issue = models.ForeignKey(
        "issues.Issue", on_delete=models.CASCADE, related_name="+"
    )
    hour = models.DateTimeField()
    unique_opens = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    machine = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issue", "hour"], name="analytics_hourly")
        ]

    def __str__(self) -> str:
        return f"{self.issue_id} at {self.hour}"


class DailyLinkStat(models.Model):
    """Human clicks on one link on one day (all, and first by each delivery)."""

    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="daily")
    day = models.DateField()
    clicks = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["link", "day"], name="analytics_link_day")
        ]

    def __str__(self) -> str:
        return f"{self.link_id} on {self.day}"


class DailyPageStat(models.Model):
    """Web views of a page (an issue's or a paper's) on one day, and referrers."""

    issue = models.ForeignKey(
        "issues.Issue", on_delete=models.CASCADE, null=True, related_name="+"
    )
    paper = models.ForeignKey(
        "issues.Paper", on_delete=models.CASCADE, null=True, related_name="+"
    )
    # "issue:<id>" or "paper:<id>": one key whichever of the two it is.
    page = models.CharField(max_length=40)
    day = models.DateField()
    # The referring site's host only ("" for none or the site itself).
    referrer = models.CharField(max_length=255, blank=True)
    views = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["page", "day", "referrer"], name="analytics_page_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.issue_id or self.paper_id} on {self.day}"


class DailyVisitor(models.Model):
    """A visitor's salted hash for one day and page: only to count them once.

    The salt changes every day and is dropped with the day's hashes once the day
    is counted, so a hash says nothing about anyone the day after.
    """

    day = models.DateField()
    page = models.CharField(max_length=40)
    digest = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "page", "digest"], name="analytics_visitor"
            )
        ]

    def __str__(self) -> str:
        return f"{self.page} on {self.day}"


class DailySalt(models.Model):
    """The day's salt for visitor hashes; the past days' are deleted."""

    day = models.DateField(primary_key=True)
    salt = models.CharField(max_length=64)

    def __str__(self) -> str:
        return str(self.day)


class Cursor(models.Model):
    """How far the flush read a table (the provider's events, by id)."""

    name = models.CharField(max_length=40, primary_key=True)
    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.position}"
