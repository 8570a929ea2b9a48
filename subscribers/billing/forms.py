from django import forms

from newsletter.models import Newsletter
from subscribers.forms import AddressField

from .models import Tier
from .money import format_amount, parse_amount


class CheckoutForm(forms.Form):
    tier = forms.ModelChoiceField(
        queryset=Tier.objects.active(), widget=forms.HiddenInput
    )
    interval = forms.ChoiceField(
        choices=Tier.Interval.choices, widget=forms.HiddenInput
    )
    email = AddressField(
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="Your receipt and the paid issues go to this address.",
    )
    amount = forms.CharField(required=False, max_length=20)

    def __init__(self, *args, signed_in: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.signed_in = signed_in
        self.fields["email"].required = not signed_in

    def clean(self):
        data = super().clean()
        tier: Tier | None = data.get("tier")
        interval = data.get("interval")
        if tier is None or interval is None:
            return data
        if interval not in tier.intervals:
            raise forms.ValidationError(f"{tier} is not offered {interval}ly.")
        data["amount_cents"] = None
        if tier.is_founding:
            minimum = tier.yearly_amount or 0
            try:
                cents = parse_amount(data.get("amount") or "", tier.currency)
            except ValueError as exc:
                raise forms.ValidationError({"amount": str(exc)}) from exc
            if cents < minimum:
                raise forms.ValidationError(
                    {
                        "amount": "A founding member pays at least "
                        f"{format_amount(minimum, tier.currency)} a year."
                    }
                )
            data["amount_cents"] = cents
        return data


class EmailAfterCheckoutForm(forms.Form):
    """A paying reader who gets no email asks for the newsletters (success page)."""

    session_id = forms.CharField(max_length=200, widget=forms.HiddenInput)
    newsletters = forms.ModelMultipleChoiceField(
        queryset=Newsletter.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one newsletter."},
    )
