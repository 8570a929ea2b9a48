from django import forms

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
