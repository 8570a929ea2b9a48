from django import forms

from .addresses import InvalidAddress, normalise_email
from .importing import FORMATS


class AddressField(forms.CharField):
    """An email address, cleaned to its stored form (see normalise_email)."""

    def clean(self, value) -> str:
        value = super().clean(value)
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
