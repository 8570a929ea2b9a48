"""The forms of sending's admin pages: the test email and the schedule."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models.functions import Lower
from django.utils import timezone
from unfold.widgets import UnfoldAdminSplitDateTimeWidget


class LabelledSplitDateTimeWidget(UnfoldAdminSplitDateTimeWidget):
    """The admin theme's date and time inputs, each named for screen readers
    (the theme shows only a placeholder in each)."""

    def __init__(self, attrs=None) -> None:
        super().__init__(attrs)
        self.widgets[0].attrs["aria-label"] = "Date"
        self.widgets[1].attrs["aria-label"] = "Time"


OUTSIDE_STAFF_LABEL = "I confirm sending to addresses outside the staff"


def staff_addresses(addresses) -> set[str]:
    """Return which of these addresses (lower-cased) belong to active staff users."""
    return set(
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .annotate(address=Lower("email"))
        .filter(address__in={address.lower() for address in addresses})
        .values_list("address", flat=True)
    )


class TestEmailForm(forms.Form):
    emails = forms.CharField(
        label="Send to",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="One address per line or separated by commas; at most 20. Staff "
        "members' addresses need nothing more.",
    )
    segment = forms.ChoiceField(
        label="As a subscriber on",
        choices=[("paid", "the paid tier (everything)"), ("free", "the free tier")],
        initial="paid",
    )
    outside_staff = forms.BooleanField(
        label=OUTSIDE_STAFF_LABEL,
        required=False,
        help_text="Needed for any address that is not an active staff member's: a "
        "draft or paid issue is not for everyone yet.",
    )

    def clean_emails(self):
        raw = self.cleaned_data["emails"].replace(",", "\n").split()
        addresses = [a.strip() for a in raw if a.strip()]
        if not addresses:
            raise ValidationError("Enter at least one address.")
        if len(addresses) > 20:
            raise ValidationError("Enter at most 20 addresses.")
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(f"“{address}” is not an email address.") from None
        return addresses

    def clean(self):
        cleaned = super().clean()
        addresses = cleaned.get("emails") or []
        if addresses and not cleaned.get("outside_staff"):
            staff = staff_addresses(addresses)
            outside = [a for a in addresses if a.lower() not in staff]
            for address in outside:
                self.add_error(
                    "emails", f"{address} is not the address of a staff member."
                )
            if outside:
                self.add_error(
                    "outside_staff",
                    f"Tick “{OUTSIDE_STAFF_LABEL}” to send there anyway.",
                )
        return cleaned


class ScheduleForm(forms.Form):
    publish_at = forms.SplitDateTimeField(
        label="Publish and send at",
        widget=LabelledSplitDateTimeWidget,
        help_text="In the publication's time zone. Beat checks every 30 seconds.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The admin's split widget prints "Date:" and "Time:" as bare text; name
        # each box so that screen readers (and people) know which is which.
        date, time = self.fields["publish_at"].widget.widgets
        date.attrs["aria-label"] = "Date"
        time.attrs["aria-label"] = "Time"

    def clean_publish_at(self):
        value = self.cleaned_data["publish_at"]
        if value < timezone.now() - timedelta(minutes=1):
            raise ValidationError(
                "That time has passed; choose a time in the future, or use "
                "“Publish now”."
            )
        return value
