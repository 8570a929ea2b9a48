"""The author's workplace: issues, papers and tags in the admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from markdownx.models import MarkdownxField
from markdownx.widgets import AdminMarkdownxWidget

from newsletter.images import ImageUploadField

from . import paper_import_admin, services
from .models import Citation, Issue, Paper, Tag, unknown_references_message
from .paper_admin import AddFromIdentifierMixin
from .rendering import (
    find_images_without_alt,
    find_unknown_references,
    missing_alt_message,
)

if TYPE_CHECKING:
    from typing import TypedDict

    from django_stubs_ext import WithAnnotations

    # The counts get_queryset() annotates each row with.
    class CitationCount(TypedDict):
        n_citations: int

    class IssueCount(TypedDict):
        n_issues: int


class AuthorsField(forms.CharField):
    """Authors as one name per line in the admin, a list in the database."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class IssueAdminForm(forms.ModelForm):
    class Meta:
        model = Issue
        fields = [
            "title", "slug", "subtitle", "body", "status", "publish_at",
            "published_at", "access", "newsletter", "audience", "segment", "tags",
            "cover_image", "cover_alt", "doi",
        ]  # fmt: skip
        # A cover too large to decode is refused from its header, saying so.
        field_classes = {"cover_image": ImageUploadField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # An issue becomes "unpublished" only through Unpublish in the Email panel.
        if self.instance.status != Issue.Status.UNPUBLISHED and "status" in self.fields:
            self.fields["status"].choices = [
                choice
                for choice in self.fields["status"].choices
                if choice[0] != Issue.Status.UNPUBLISHED
            ]

    def clean(self):
        cleaned = super().clean()
        status = cleaned.get("status")
        body = cleaned.get("body") or ""
        # self.instance still holds the stored status here. A page left open while
        # beat published the issue would otherwise post its old status back.
        stored = self.instance.status if self.instance.pk else None
        if stored == Issue.Status.PUBLISHED and status != Issue.Status.PUBLISHED:
            self.add_error(
                "status",
                "This issue is already published and has been emailed to "
                "subscribers, so it cannot go back to draft or scheduled. To take it "
                "off the site, use “Unpublish…” in the Email panel. Reload the page "
                "to see it as it is now.",
            )
        elif stored == Issue.Status.UNPUBLISHED and status != stored:
            # Leaving "unpublished" goes through publish_issue, which knows not to
            # email it again; a status saved here would not.
            self.add_error(
                "status",
                "This issue was published and emailed before. To put it back on the "
                "site, use “Publish again…” in the Email panel (nobody is emailed a "
                "second time).",
            )
        audience, segment = cleaned.get("audience"), cleaned.get("segment")
        if audience == Issue.Audience.SEGMENT and segment is None:
            self.add_error("segment", "Choose the segment this issue is sent to.")
        elif audience and audience != Issue.Audience.SEGMENT and segment is not None:
            self.add_error(
                "segment",
                "A segment is used only with the audience “A segment”: clear it, "
                "or choose that audience.",
            )
        if status in (Issue.Status.PUBLISHED, Issue.Status.SCHEDULED):
            unknown = find_unknown_references(body)
            if unknown:
                # The same words as every other way of publishing (the service's).
                self.add_error("body", unknown_references_message(unknown))
            undescribed = find_images_without_alt(body)
            if undescribed:
                self.add_error("body", missing_alt_message(undescribed))
        return cleaned


def _https_url_formfield(db_field, **kwargs):
    # Django 6 reads a typed address without a scheme as https; so does Quire now.
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class PaperAdminForm(forms.ModelForm):
    authors = AuthorsField(
        required=False,
        help_text="One author per line, in the paper's order.",
    )

    class Meta:
        model = Paper
        formfield_callback = _https_url_formfield
        fields = [
            "title", "slug", "authors", "year", "venue", "arxiv_id", "doi", "url",
            "code_url", "tags", "summary",
        ]  # fmt: skip


class CitationInline(admin.TabularInline):
    model = Citation
    extra = 0
    autocomplete_fields = ["paper"]
    fields = ["paper", "position", "rank", "note"]
    verbose_name = "cited paper"
    verbose_name_plural = (
        "Cited papers: references like [[arxiv:…]] in the body are added here "
        "when you save; add others by hand, set a rank for a top-N list"
    )
    formfield_overrides = {
        Citation._meta.get_field("note").__class__: {
            "widget": forms.Textarea(attrs={"rows": 2, "cols": 40})
        }
    }


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    form = IssueAdminForm
    change_form_template = "admin/issues/issue/change_form.html"
    view_on_site = False  # the change form has its own "View on site"/"Preview"

    class Media:
        # "add this paper" on an unknown reference in the live preview.
        js = ["js/paper-add.js"]

    list_display = [
        "title",
        "status",
        "access",
        "publish_at",
        "published_at",
        "citation_count",
        "attention",
        "updated",
    ]
    list_filter = [
        "status",
        "access",
        "audience",
        "newsletter",
        "tags",
        ("published_at", admin.DateFieldListFilter),
    ]
    search_fields = ["title", "subtitle", "body"]
    date_hierarchy = "published_at"
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["tags"]
    inlines = [CitationInline]
    readonly_fields = ["word_count", "old_addresses"]
    formfield_overrides = {MarkdownxField: {"widget": AdminMarkdownxWidget}}
    fieldsets = [
        (None, {"fields": ["title", "slug", "old_addresses", "subtitle", "body"]}),
        (
            "Publishing",
            {
                "fields": [
                    "status",
                    "publish_at",
                    "published_at",
                    "access",
                    "tags",
                    "doi",
                ],
                "description": "Drafts and scheduled issues are visible to staff "
                "only; use “Preview as readers will see it” above to check one.",
            },
        ),
        (
            "Audience",
            {
                "fields": ["newsletter", "audience", "segment"],
                "description": "Who gets it by email, and whether the site lists "
                "it. Publishing asks you to confirm, with the exact number of "
                "recipients, before anything is sent; the audience is fixed once "
                "it is sent.",
            },
        ),
        ("Cover", {"fields": ["cover_image", "cover_alt"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            # A welcome step's content is edited in its welcome sequence's admin.
            .exclude(kind=Issue.Kind.WELCOME)
            .annotate(n_citations=Count("citations"))
            .defer("body_html", "free_html", "paid_html", "public_text")
            # Meta.ordering is left out of a GROUP BY query (see PaperAdmin).
            .order_by(*Issue._meta.ordering, "pk")
        )

    @admin.display(description="old addresses")
    def old_addresses(self, obj: Issue | None) -> str:
        # Kept when the slug of a published issue changes (Issue.save).
        slugs = list(obj.old_slugs.values_list("slug", flat=True)) if obj else []
        if not slugs:
            return "None: links to this issue use its slug above."
        return format_html(
            "{} (each redirects here; no other issue may take one as its slug)",
            format_html_join(", ", "/issues/{}/", ((slug,) for slug in slugs)),
        )

    @admin.display(description="papers", ordering="n_citations")
    def citation_count(self, obj: WithAnnotations[Issue, CitationCount]) -> int:
        return obj.n_citations

    @admin.display(description="needs attention")
    def attention(self, obj: Issue) -> str:
        # Both come from fields stored on save (and by beat): nothing is rendered
        # or queried per row.
        notes = []
        if obj.publish_error:
            notes.append(
                format_html(
                    '<strong title="{}">Not published at its time</strong>',
                    obj.publish_error,
                )
            )
        if n := len(obj.unknown_references):
            notes.append(
                format_html(
                    '<span title="{}">{} unknown reference{}</span>',
                    ", ".join(obj.unknown_references),
                    n,
                    "" if n == 1 else "s",
                )
            )
        return format_html_join(" · ", "{}", ((note,) for note in notes))

    def save_model(self, request, obj, form, change):
        # Citations are recorded after the inline is saved (save_related), so a
        # paper both referenced in the body and picked by hand is cited once.
        obj.save()
        # Only choosing "Published" in this form sends the issue (response_change);
        # editing an issue that was already published (demo content, an imported
        # archive) must never email it.
        obj._published_by_form = "status" in form.changed_data

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.record_citations(issue=form.instance)


class CitingIssueInline(admin.TabularInline):
    model = Citation
    extra = 0
    can_delete = False
    fields = ["issue_link", "issue_status", "rank", "note"]
    readonly_fields = cast(list[str], fields)
    verbose_name = "issue citing this paper"
    verbose_name_plural = "Issues citing this paper"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("issue")

    @admin.display(description="issue")
    def issue_link(self, obj: Citation) -> str:
        url = reverse("admin:issues_issue_change", args=[obj.issue_id])
        return format_html('<a href="{}">{}</a>', url, obj.issue.title)

    @admin.display(description="status")
    def issue_status(self, obj: Citation) -> str:
        return obj.issue.get_status_display()


@admin.register(Paper)
class PaperAdmin(AddFromIdentifierMixin, admin.ModelAdmin):
    form = PaperAdminForm

    class Media:
        js = ["js/paper-add.js"]

    list_display = ["title", "first_author", "year", "venue", "arxiv_id", "issue_count"]
    list_filter = ["year", "tags"]
    search_fields = ["title", "authors", "arxiv_id", "doi"]
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["tags"]
    inlines = [CitingIssueInline]
    formfield_overrides = {
        MarkdownxField: {"widget": AdminMarkdownxWidget},
        models.URLField: {"assume_scheme": "https"},
    }
    fields = [
        "title", "slug", "authors", "year", "venue", "arxiv_id", "doi", "url",
        "code_url", "tags", "summary",
    ]  # fmt: skip
    # Import and export (BibTeX, RIS, CSL-JSON) are in paper_import_admin.py.
    actions = [paper_import_admin.export_bibtex, paper_import_admin.export_csl]

    def get_urls(self):
        return paper_import_admin.urls(self) + super().get_urls()

    def get_queryset(self, request):
        # Django leaves Meta.ordering out of a GROUP BY query; the changelist sorts
        # on its own, but the citation picker's autocomplete pages through this.
        return (
            super()
            .get_queryset(request)
            .annotate(n_issues=Count("citations"))
            .order_by(*Paper._meta.ordering, "pk")
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Issues show this paper's card baked into their HTML: refresh them.
        services.rerender_citing_issues(paper=form.instance)

    def delete_model(self, request, obj):
        services.delete_papers(papers=Paper.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        services.delete_papers(papers=queryset)

    @admin.display(description="first author")
    def first_author(self, obj: Paper) -> str:
        return (
            (obj.authors[0] + (" et al." if len(obj.authors) > 1 else ""))
            if obj.authors
            else ""
        )

    @admin.display(description="issues", ordering="n_issues")
    def issue_count(self, obj: WithAnnotations[Paper, IssueCount]) -> int:
        return obj.n_issues


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
