from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from .models import Publication


@admin.register(Publication)
class PublicationAdmin(admin.ModelAdmin):
    """One row of settings: the list page goes straight to it."""

    fieldsets = [
        (None, {"fields": ["name", "description"]}),
        ("Sender", {"fields": ["sender_name", "sender_email", "postal_address"]}),
        (
            "Subscribers",
            {"fields": ["welcome_email", "consent_text", "consent_text_version"]},
        ),
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
