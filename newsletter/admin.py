from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from .images import ImageUploadField
from .mail import validate_sender_address
from .models import Publication


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
