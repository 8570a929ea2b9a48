import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator
from django.db import models, transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator, slugify
from markdownx.models import MarkdownxField

# validate_arxiv_id is named here by the migrations.
from newsletter.images import image_size
from newsletter.models import Newsletter, default_newsletter_id
from subscribers.models import Segment, Subscriber

from .identifiers import (
    NormalizedCharField,
    normalize_arxiv_id,
    normalize_doi,
    validate_arxiv_id,
    validate_doi,
)
from .rendering import readable_text, render_issue_body, render_markdown
from .rendering.limits import validate_markdown_limits


def unique_slug(
    model, text: str, *, instance_pk=None, max_length: int = 200, also_taken=None
) -> str:
    """Return a slug for text that no other row of model uses yet.

    also_taken: a queryset of further slugs to avoid (an issue's old addresses).
    """
    base = slugify(text)[: max_length - 8].strip("-") or "untitled"
    taken = set(
        model.objects.filter(slug__startswith=base)
        .exclude(pk=instance_pk)
        .values_list("slug", flat=True)
    )
    if also_taken is not None:
        taken.update(
            also_taken.filter(slug__startswith=base).values_list("slug", flat=True)
        )
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


class Tag(models.Model):
    name = models.CharField(
        max_length=100,
        unique=True,
        help_text="Shown on issues and papers, e.g. Vision.",
    )
    slug = models.SlugField(
        max_length=100,
        unique=True,
        help_text="The tag's address: /tags/this-slug/. Filled in from the name.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = unique_slug(Tag, self.name, instance_pk=self.pk, max_length=100)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("issues:tag", kwargs={"slug": self.slug})


# The version an arXiv id names: 2201.03545v2, hep-th/9901001v1 (never the "v" of an
# old-style archive, which comes before the slash).
ARXIV_VERSION_RE = re.compile(r"(?<=\d)v(\d+)$")

# A description as search engines show it: about 160 characters.
DESCRIPTION_WORDS = 30
DESCRIPTION_CHARS = 160


class Paper(models.Model):
    title = models.CharField(max_length=500, help_text="The paper's full title.")
    slug = models.SlugField(
        max_length=200,
        unique=True,
        blank=True,
        help_text="The paper's address (/papers/this-slug/) and the name to cite it by "
        "in an issue ([[paper:this-slug]]). Filled in from the title.",
    )
    authors = models.JSONField(
        default=list,
        blank=True,
        help_text="Author names in the paper's order, e.g. "
        '["Zhuang Liu", "Hanzi Mao"].',
    )
    year = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        db_index=True,
        help_text="Year of publication; the top-papers list of a year uses it.",
    )
    arxiv_id = NormalizedCharField(
        "arXiv id", max_length=50, blank=True, db_index=True,
        normalize=normalize_arxiv_id, validators=[validate_arxiv_id],
        help_text="e.g. 2201.03545 or hep-th/9901001, with an optional version (v2); "
        "a pasted arxiv.org link or arXiv:2201.03545 is trimmed to the id. "
        "Cite it in an issue with [[arxiv:2201.03545]].",
    )  # fmt: skip
    doi = NormalizedCharField(
        "DOI", max_length=200, blank=True, db_index=True, normalize=normalize_doi,
        help_text="e.g. 10.1109/CVPR52688.2022.01167; a https://doi.org/… link or "
        "doi:10.… is trimmed to the DOI. Cite it in an issue with [[doi:10.1109/…]].",
    )  # fmt: skip
    url = models.URLField(
        "URL", max_length=500, blank=True,
        help_text="Where to read it when it has no arXiv id or DOI.",
    )  # fmt: skip
    venue = models.CharField(
        max_length=200, blank=True, help_text="Conference or journal, e.g. CVPR."
    )
    code_url = models.URLField(
        "code URL", max_length=500, blank=True,
        help_text="The official code repository, if any.",
    )  # fmt: skip
    summary = MarkdownxField(
        blank=True,
        validators=[validate_markdown_limits],
        help_text="Your short summary, in Markdown; shown on its page.",
    )
    summary_html = models.TextField(blank=True, editable=False)
    tags = models.ManyToManyField(Tag, blank=True, related_name="papers")
    # Kept by beat's arXiv check (issues/paper_versions.py).
    arxiv_latest_version = models.PositiveSmallIntegerField(
        "latest arXiv version", null=True, blank=True, editable=False,
        help_text="arXiv's latest version of the paper when last checked.",
    )  # fmt: skip
    arxiv_checked_at = models.DateTimeField(
        "arXiv checked", null=True, blank=True, editable=False
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-year", "title"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        """Fill in the slug, tidy the ids and render the summary.

        The issues showing this paper's card are refreshed by
        services.rerender_citing_issues, which the admin and commands call.
        """
        if not self.slug:
            self.slug = unique_slug(Paper, self.title, instance_pk=self.pk)
        # The same tidying as the form's, for papers made in code or the shell.
        self.arxiv_id = normalize_arxiv_id(self.arxiv_id)
        self.doi = normalize_doi(self.doi)
        self.summary_html = render_markdown(self.summary, papers={})
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("issues:paper", kwargs={"slug": self.slug})

    @property
    def description(self) -> str:
        """Return a short plain-text description: the summary's opening, or else who
        wrote the paper and when (for meta and Open Graph tags)."""
        text = readable_text(self.summary_html)
        if text:
            return Truncator(Truncator(text).words(DESCRIPTION_WORDS)).chars(
                DESCRIPTION_CHARS
            )
        year = f" ({self.year})" if self.year else ""
        authors = ", ".join(map(str, self.authors or []))
        return Truncator(authors + year).chars(DESCRIPTION_CHARS)

    @property
    def arxiv_discussed_version(self) -> int | None:
        """Return the arXiv version the arXiv id names (2201.03545v1: 1), or None."""
        match = ARXIV_VERSION_RE.search(self.arxiv_id or "")
        return int(match.group(1)) if match else None

    @property
    def arxiv_latest_url(self) -> str:
        """Return arXiv's page of the paper's latest version (the id unversioned)."""
        return f"https://arxiv.org/abs/{ARXIV_VERSION_RE.sub('', self.arxiv_id)}"

    @property
    def arxiv_newer_version(self) -> int | None:
        """Return arXiv's latest version when newer than the one discussed, or None."""
        discussed, latest = self.arxiv_discussed_version, self.arxiv_latest_version
        if discussed is None or latest is None or latest <= discussed:
            return None
        return latest

    @property
    def link(self) -> str:
        if self.arxiv_id:
            return f"https://arxiv.org/abs/{self.arxiv_id}"
        if self.doi:
            return f"https://doi.org/{self.doi}"
        return self.url


def unknown_references_message(references: Iterable) -> str:
    """Return why an issue citing these unknown papers cannot go out, and the fix."""
    names = ", ".join(str(ref) for ref in references)
    return (
        f"These references name no paper yet: {names}. Add each paper under Papers "
        "(or fix the reference in the body); an issue that cites a missing paper "
        "cannot be published or scheduled."
    )


class IssueQuerySet(models.QuerySet):
    def on_site(self) -> "IssueQuerySet":
        """Return the issues that may have a page: never a welcome email's content."""
        return self.filter(kind=Issue.Kind.ISSUE)

    def published(self) -> "IssueQuerySet":
        """Return issues readers may see: published, with a publish time passed."""
        return self.on_site().filter(
            status=Issue.Status.PUBLISHED, published_at__lte=timezone.now()
        )

    def listed(self) -> "IssueQuerySet":
        """Return the issues the site lists (home, archive, tags, feeds, sitemap,
        search, neighbours, papers' issues): not the email-only ones, whose page
        answers only to the email's web-view link."""
        return self.on_site().exclude(audience=Issue.Audience.EMAIL)

    def for_listing(self, *, with_text: bool = False) -> "IssueQuerySet":
        """Return these issues for a list of titles: tags prefetched, bodies left out.

        with_text keeps the free plain text (search snippets are cut from it).
        """
        heavy = ["body", "body_html", "free_html", "paid_html", "headings"]
        if not with_text:
            heavy.append("public_text")
        return self.prefetch_related("tags").defer(*heavy)


class Issue(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        PUBLISHED = "published", "Published"
        # Taken off the site after it went out; its email history is kept.
        UNPUBLISHED = "unpublished", "Unpublished"

    class Access(models.TextChoices):
        FREE = "free", "Free"
        PAID = "paid", "Paid supporters only"

    class Audience(models.TextChoices):
        ALL = "all", "Everyone on its newsletter"
        FREE = "free", "Free subscribers only"
        PAID = "paid", "Paying members only"
        SEGMENT = "segment", "A segment"
        WEB = "web", "Web only: published on the site and feeds, not emailed"
        EMAIL = "email", "Email only: sent, not listed on the site"

    class Kind(models.TextChoices):
        ISSUE = "issue", "Issue"
        # The content of a welcome sequence's step: emailed, never on the site.
        WELCOME = "welcome", "Welcome email"

    title = models.CharField(max_length=300, help_text="The headline readers see.")
    slug = models.SlugField(
        max_length=200,
        unique=True,
        blank=True,
        help_text="The issue's address: /issues/this-slug/. Filled in from the title; "
        "avoid changing it once published, old links would break.",
    )
    subtitle = models.CharField(
        max_length=500,
        blank=True,
        help_text="One sentence under the title; also the description in link "
        "previews and feeds.",
    )
    body = MarkdownxField(
        blank=True,
        # Refused on save when too long or nested too deep (see README, Limits).
        validators=[validate_markdown_limits],
        help_text="Markdown. Cite a paper with [[arxiv:2201.03545]], "
        "[[doi:10.…]] or [[paper:slug]] to show its card and list it under "
        '"Papers in this issue". Put a line &lt;!-- paywall --&gt; where the part for '
        "paying supporters begins. Code: fence it with ```python. Footnotes: "
        "text[^1] and [^1]: note.",
    )
    # Rendered on save by issues.rendering; never rebuilt per request.
    body_html = models.TextField(blank=True, editable=False)
    free_html = models.TextField(blank=True, editable=False)
    paid_html = models.TextField(blank=True, editable=False)
    # The plain text anyone may read (search, descriptions): the free part, or
    # nothing for a paid-only issue without a paywall break.
    public_text = models.TextField(blank=True, editable=False)
    word_count = models.PositiveIntegerField(default=0, editable=False)
    # The headings of the body ({level, id, text, paid}), for its table of contents.
    headings = models.JSONField(default=list, blank=True, editable=False)
    # How many papers the issue cites, for its card; kept by
    # services.record_citations, so listings count nothing per card.
    paper_count = models.PositiveIntegerField(default=0, editable=False)
    cover_image = models.ImageField(
        upload_to="covers/%Y/",
        blank=True,
        # The formats every browser and mail client shows, and the only ones
        # /media/ serves as images (newsletter/media.py).
        validators=[
            FileExtensionValidator(
                ["jpg", "jpeg", "png", "gif", "webp"],
                message="Use a JPEG, PNG, GIF or WebP image; %(extension)s files "
                "do not show in every browser and mail client.",
            )
        ],
        help_text="Optional; shown at the top of the issue and in link previews "
        "(1200×630 works best).",
    )
    # Read once when a cover is saved (see image_size); pages and link previews
    # give them. Not ImageField's width_field: that opens the file on every load
    # of a row whose size is unknown, and fails on a missing file.
    cover_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    cover_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    cover_alt = models.CharField(
        "cover description",
        max_length=300,
        blank=True,
        help_text="What the cover image shows, for readers who cannot see it.",
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True,
        help_text="Drafts, scheduled and unpublished issues are visible to staff "
        "only. Use the Email panel to publish, schedule, unpublish or publish again.",
    )  # fmt: skip
    access = models.CharField(
        max_length=10, choices=Access.choices, default=Access.FREE,
        help_text="Free: everyone reads it (except the part below a paywall break). "
        "Paid supporters only: others see the part above the paywall break, or "
        "just the title and subtitle.",
    )  # fmt: skip
    publish_at = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="For a scheduled issue: when it goes out.",
    )  # fmt: skip
    published_at = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="When it went out; set automatically when it is published.",
    )  # fmt: skip
    # The body's references that name no paper, as [[kind:value]]; kept by render()
    # so the admin's list shows them without rendering each row.
    unknown_references = models.JSONField(default=list, blank=True, editable=False)
    # Why beat could not publish this scheduled issue at its time; cleared when it
    # is published or the author saves it.
    publish_error = models.TextField(blank=True, editable=False)
    publish_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    newsletter = models.ForeignKey(
        Newsletter,
        on_delete=models.PROTECT,
        default=default_newsletter_id,
        related_name="issues",
        help_text="The newsletter whose subscribers it is emailed to.",
    )
    audience = models.CharField(
        max_length=10, choices=Audience.choices, default=Audience.ALL,
        help_text="Who gets it by email, and whether it is listed on the site. "
        "Frozen when it is published.",
    )  # fmt: skip
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="issues",
        help_text="For the audience 'a segment': which one.",
    )
    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.ISSUE, editable=False
    )
    doi = NormalizedCharField(
        "DOI", max_length=200, blank=True, normalize=normalize_doi,
        validators=[validate_doi],
        help_text="Optional: the DOI registered for this issue (e.g. by Rogue "
        "Scholar), such as 10.59350/abcde-12345; a https://doi.org/… link is trimmed "
        "to the DOI. The page, its citations and the feed then name it.",
    )  # fmt: skip
    tags = models.ManyToManyField(Tag, blank=True, related_name="issues")
    papers = models.ManyToManyField(
        Paper, through="Citation", blank=True, related_name="issues"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = IssueQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-created"]
        constraints = [
            # DOIs are case-insensitive: 10.1234/ABC and 10.1234/abc are one.
            models.UniqueConstraint(
                Lower("doi"),
                condition=~models.Q(doi=""),
                name="unique_issue_doi",
                violation_error_message="Another issue already has this DOI.",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        """Render the body and fill in the slug.

        The papers it cites are recorded by services.record_citations, which the
        admin and commands call once the citations picked by hand are saved too.
        """
        # The author has seen and acted on a failed scheduled publish; beat checks
        # again at its next run and says so again if it still fails.
        self.publish_error, self.publish_error_at = "", None
        if not self.slug:
            self.slug = unique_slug(
                Issue, self.title, instance_pk=self.pk,
                also_taken=IssueSlug.objects.exclude(issue_id=self.pk),
            )  # fmt: skip
        if self.status == self.Status.PUBLISHED and self.published_at is None:
            self.published_at = self.publish_at or timezone.now()
        self.doi = normalize_doi(self.doi)
        self.cover_width, self.cover_height = image_size(
            self.cover_image, known=(self.cover_width, self.cover_height)
        )
        self.render()
        with transaction.atomic():
            previous = self._stored_address()
            super().save(*args, **kwargs)
            self._keep_old_slug(previous)

    def get_absolute_url(self) -> str:
        return reverse("issues:issue", kwargs={"slug": self.slug})

    def _stored_address(self) -> tuple[str, bool] | None:
        """Return the stored slug, and whether readers may have seen it."""
        if self.pk is None:
            return None
        row = (
            Issue.objects.filter(pk=self.pk).values_list("slug", "published_at").first()
        )
        return None if row is None else (row[0], row[1] is not None)

    def _keep_old_slug(self, previous: tuple[str, bool] | None) -> None:
        """Keep a published issue's former slug, so its old address redirects.

        The current slug always wins: an old slug this issue (or, saved past the
        form's check, another one) takes again stops redirecting.
        """
        IssueSlug.objects.filter(slug=self.slug).delete()
        if previous is not None and previous[1] and previous[0] != self.slug:
            IssueSlug.objects.update_or_create(
                slug=previous[0], defaults={"issue": self}
            )

    def render(self, *, papers: dict | None = None):
        """Render body into the stored HTML fields; return the RenderedBody.

        papers: the cited papers already looked up (see render_issue_body).
        """
        rendered = render_issue_body(self.body, papers=papers)
        self.body_html = rendered.body_html
        self.free_html = rendered.free_html
        self.paid_html = rendered.paid_html
        self.word_count = rendered.word_count
        self.headings = rendered.headings
        self.unknown_references = [str(ref) for ref in rendered.unknown_references]
        self.public_text = (
            "" if self.is_paid_only and not rendered.paid_html else rendered.free_text
        )
        return rendered

    def clean(self) -> None:
        if self.status == self.Status.SCHEDULED and not self.publish_at:
            raise ValidationError(
                {"publish_at": "Choose when this scheduled issue should go out."}
            )
        if self.slug:
            old = (
                IssueSlug.objects.filter(slug=self.slug)
                .exclude(issue_id=self.pk)
                .select_related("issue")
                .only("issue__title")
                .first()
            )
            if old is not None:
                raise ValidationError(
                    {
                        "slug": f"This was the address of “{old.issue.title}”, and "
                        "its old links still lead there. Choose another slug."
                    }
                )

    @property
    def has_paywall(self) -> bool:
        return bool(self.paid_html)

    @property
    def is_paid_only(self) -> bool:
        return self.access == self.Access.PAID

    @property
    def is_public(self) -> bool:
        return (
            self.status == self.Status.PUBLISHED
            and self.published_at is not None
            and self.published_at <= timezone.now()
        )

    @property
    def doi_url(self) -> str:
        return f"https://doi.org/{self.doi}" if self.doi else ""

    @property
    def reading_minutes(self) -> int:
        return max(1, round(self.word_count / 230))


class IssueSlug(models.Model):
    """A slug an issue was published under before; its address redirects."""

    slug = models.SlugField(max_length=200, unique=True)
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="old_slugs")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "old slug"

    def __str__(self) -> str:
        return f"{self.slug} → {self.issue.slug}"


class Citation(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="citations")
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="citations")
    position = models.PositiveIntegerField(
        default=0,
        help_text="Order in the issue's list of papers. Quire numbers it on save: "
        "ranked papers first, then those the body references in the order they "
        "appear, then papers added here by hand, in the order you give them.",
    )
    rank = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text='For a "top papers of the year" list: 1 for the best.',
    )
    note = models.TextField(
        blank=True, help_text="A line on why it matters; shown in the papers list."
    )
    in_paid_part = models.BooleanField(
        default=False,
        editable=False,
        help_text="Referenced only below the paywall break.",
    )

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["issue", "paper"], name="unique_citation")
        ]

    def __str__(self) -> str:
        return f"{self.issue} cites {self.paper}"


class SavedPaper(models.Model):
    """A paper a signed-in reader keeps in their library (their account page)."""

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="saved_papers"
    )
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="saves")
    saved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-saved_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "paper"], name="unique_saved_paper"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} saved {self.paper}"
