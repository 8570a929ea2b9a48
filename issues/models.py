from django.db import models
from django.urls import reverse
from django.utils import timezone
from markdownx.models import MarkdownxField


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("issues:tag", kwargs={"slug": self.slug})


class Paper(models.Model):
    title = models.CharField(max_length=500)
    slug = models.SlugField(max_length=200, unique=True)
    authors = models.JSONField(
        default=list,
        blank=True,
        help_text="Author names in the paper's order, e.g. "
        '["Zhuang Liu", "Hanzi Mao"].',
    )
    year = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    arxiv_id = models.CharField(
        "arXiv id", max_length=50, blank=True, db_index=True,
        help_text="e.g. 2201.03545 or hep-th/9901001, with an optional version (v2).",
    )  # fmt: skip
    doi = models.CharField("DOI", max_length=200, blank=True, db_index=True)
    url = models.URLField("URL", max_length=500, blank=True)
    venue = models.CharField(max_length=200, blank=True)
    code_url = models.URLField("code URL", max_length=500, blank=True)
    summary = MarkdownxField(blank=True)
    summary_html = models.TextField(blank=True, editable=False)
    tags = models.ManyToManyField(Tag, blank=True, related_name="papers")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-year", "title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("issues:paper", kwargs={"slug": self.slug})


class IssueQuerySet(models.QuerySet):
    def published(self) -> "IssueQuerySet":
        """Return issues readers may see: published, with a publish time passed."""
        return self.filter(
            status=Issue.Status.PUBLISHED, published_at__lte=timezone.now()
        )


class Issue(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        PUBLISHED = "published", "Published"

    class Access(models.TextChoices):
        FREE = "free", "Free"
        PAID = "paid", "Paid supporters only"

    title = models.CharField(max_length=300)
    slug = models.SlugField(max_length=200, unique=True)
    subtitle = models.CharField(max_length=500, blank=True)
    body = MarkdownxField(blank=True)
    # Rendered on save by issues.rendering; never rebuilt per request.
    body_html = models.TextField(blank=True, editable=False)
    free_html = models.TextField(blank=True, editable=False)
    paid_html = models.TextField(blank=True, editable=False)
    cover_image = models.ImageField(upload_to="covers/%Y/", blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    access = models.CharField(
        max_length=10, choices=Access.choices, default=Access.FREE
    )
    publish_at = models.DateTimeField(null=True, blank=True, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="issues")
    papers = models.ManyToManyField(
        Paper, through="Citation", blank=True, related_name="issues"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = IssueQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-created"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("issues:issue", kwargs={"slug": self.slug})

    @property
    def has_paywall(self) -> bool:
        return bool(self.paid_html)

    @property
    def is_paid_only(self) -> bool:
        return self.access == self.Access.PAID


class Citation(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="citations")
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="citations")
    position = models.PositiveIntegerField(default=0)
    rank = models.PositiveSmallIntegerField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["issue", "paper"], name="unique_citation")
        ]

    def __str__(self) -> str:
        return f"{self.issue} cites {self.paper}"
