from typing import cast

from django import forms

from newsletter.models import Newsletter

from .addresses import InvalidAddress, normalise_email
from .importing import FORMATS
from .models import Subscriber


class AddressField(forms.CharField):
    """An email address, cleaned to its stored form (see normalise_email)."""

    def clean(self, value) -> str:
        value = super().clean(value)
        if not value:  # an optional field left empty
            return value
        try:
            return normalise_email(value)
        except InvalidAddress as exc:
            raise forms.ValidationError(str(exc)) from None


class SubscribeForm(forms.Form):
    email = AddressField(
        max_length=254,
        widget=forms.EmailInput(
            attrs={"autocomplete": "email", "placeholder": "you@example.org"}
        ),
    )
    name = forms.CharField(max_length=200, required=False)
    # The honeypot: hidden from people, filled in by bots.
    website = forms.CharField(required=False)
    # With two newsletters or more the form offers them as checkboxes, and says
    # so with newsletters_offered; a form without them (one newsletter, a page
    # cached before a second was added) joins the default ones.
    newsletters = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    newsletters_offered = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.TypedMultipleChoiceField, self.fields["newsletters"])
        field.choices = [
            (pk, name) for pk, name in Newsletter.objects.values_list("pk", "name")
        ]

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("newsletters_offered") and not cleaned.get("newsletters"):
            self.add_error("newsletters", "Choose at least one newsletter to receive.")
        return cleaned

    def chosen_newsletters(self) -> list[int] | None:
        """Return the newsletters chosen on the form, or None where none was
        offered (the default ones)."""
        if not self.cleaned_data.get("newsletters_offered"):
            return None
        return list(self.cleaned_data.get("newsletters") or [])

    @property
    def ticked(self) -> set[int]:
        """The newsletters ticked in what was sent, to show them again."""
        if not self.is_bound or not hasattr(self.data, "getlist"):
            return set()
        values = self.data.getlist("newsletters")
        return {int(value) for value in values if value.isdigit() and len(value) < 12}


class SubscriberAdminForm(forms.ModelForm):
    """The admin's subscriber form: the address is checked and normalised as on
    the signup form, so a typo is shown next to the field."""

    class Meta:
        model = Subscriber
        fields = ["email", "name", "status", "paused", "source"]
        field_classes = {"email": AddressField}


class LoginForm(forms.Form):
    email = AddressField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)


class NewslettersForm(forms.Form):
    """Which newsletters a signed-in subscriber receives."""

    newsletters = forms.TypedMultipleChoiceField(
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Tick at least one newsletter, or leave them all below."
        },
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.TypedMultipleChoiceField, self.fields["newsletters"])
        field.choices = [
            (pk, name) for pk, name in Newsletter.objects.values_list("pk", "name")
        ]


class EmailChangeForm(forms.Form):
    email = AddressField(
        label="New email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="A CSV file exported from Substack, Ghost, "
        "Mailchimp, or a plain list of email[,name] lines."
    )
    format = forms.ChoiceField(
        choices=[(name, label) for name, label in FORMATS.items()],
        initial="auto",
        help_text="Leave on “Detect” unless the file is misread.",
    )
