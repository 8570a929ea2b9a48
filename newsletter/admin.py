from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.urls import reverse

from .images import ImageUploadField
from .mail import validate_sender_address
from .models import Newsletter, Publication


class SenderAddressField(forms.EmailField):
    """An email field that says why a non-ASCII address cannot send."""

    def validate(self, value: str) -> None:
        super().validate(value)
        # Before the generic "Enter a valid email address.", which would say nothing
        # about what is wrong with ünï@example.org.
        validate_sender_address(value)


class PublicationForm(forms.ModelForm):
    sender_email = SenderAddressField(
        required=False, help_text=Publication._meta.get_field("sender_email").help_text
    )

    class Meta:
        model = Publication
        fields = [
            "name",
            "description",
            "author_name",
            "author_photo",
            "author_photo_alt",
            "sender_name",
            "sender_email",
            "postal_address",
            "welcome_email",
            "consent_text",
        ]
        # A photo too large to decode is refused from its header, saying so.
        field_classes = {"author_photo": ImageUploadField}


@admin.register(Publication)
class PublicationAdmin(admin.ModelAdmin):
    """One row of settings: the list page goes straight to it."""

    form = PublicationForm
    fieldsets = [
        (None, {"fields": ["name", "description"]}),
        ("Author", {"fields": ["author_name", "author_photo", "author_photo_alt"]}),
        ("Sender", {"fields": ["sender_name", "sender_email", "postal_address"]}),
        (
            "Subscribers",
            {"fields": ["welcome_email", "consent_text", "consent_text_version"]},
        ),
        ("Tracking", {"fields": ["track_opens", "track_clicks"]}),
    ]
    readonly_fields = ["consent_text_version"]

    def has_add_permission(self, request) -> bool:
        return not Publication.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        publication = Publication.load()
        return HttpResponseRedirect(
            reverse("admin:newsletter_publication_change", args=[publication.pk])
        )

    def save_model(self, request, obj, form, change) -> None:
        # Consent records keep the version each subscriber saw, so a changed wording
        # needs a new number.
        if change and "consent_text" in form.changed_data:
            obj.consent_text_version += 1
        super().save_model(request, obj, form, change)


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    """The publication's newsletters: at least one, ordered by position."""

    list_display = [
        "name",
        "slug",
        "join_by_default",
        "position",
        "subscriber_count",
        "issue_count",
    ]
    list_editable = ["position"]
    list_display_links = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "description"]}),
        ("Emails", {"fields": ["sender_name", "list_id"]}),
        ("Subscribers", {"fields": ["join_by_default", "position"]}),
    ]
    # Deleting goes through the delete page, which says why a newsletter must stay.
    actions = None

    def get_queryset(self, request):
        # Two grouped counts for the whole list, not a query per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                subscribers_total=Count("subscriptions", distinct=True),
                issues_total=Count("issues", distinct=True),
            )
        )

    @admin.display(description="subscribers", ordering="subscribers_total")
    def subscriber_count(self, obj: Newsletter) -> int:
        return obj.subscribers_total  # type: ignore[attr-defined]  # annotated

    @admin.display(description="issues", ordering="issues_total")
    def issue_count(self, obj: Newsletter) -> int:
        return obj.issues_total  # type: ignore[attr-defined]  # annotated

    def delete_view(self, request, object_id, extra_context=None):
        newsletter = self.get_object(request, object_id)
        # Someone who may not delete gets Django's refusal, not the reason.
        if newsletter is not None and self.has_delete_permission(request, newsletter):
            refusal = deletion_refusal(newsletter)
            if refusal:
                messages.error(request, refusal)
                return HttpResponseRedirect(
                    reverse("admin:newsletter_newsletter_change", args=[newsletter.pk])
                )
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj) -> None:
        # The delete page checked; checked again in case another editor's change
        # came in between (the last other newsletter deleted meanwhile).
        refusal = deletion_refusal(obj)
        if refusal:
            raise PermissionDenied(refusal)
        super().delete_model(request, obj)


def deletion_refusal(newsletter: Newsletter) -> str:
    """Return why the newsletter may not be deleted, or "" if it may."""
    if not Newsletter.objects.exclude(pk=newsletter.pk).exists():
        return (
            f"“{newsletter.name}” is the only newsletter, and there must always be "
            "one: add another newsletter first, or rename this one."
        )
    issues = newsletter.issues.count()
    if issues:
        return (
            f"“{newsletter.name}” has {issues} issue{'s' if issues != 1 else ''}: "
            "move them to another newsletter (each issue's page) before deleting "
            "it, so that no issue loses its list."
        )
    return ""
