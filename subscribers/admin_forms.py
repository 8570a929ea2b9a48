"""The admin's forms that place subscribers: import options, the bulk actions'
choice, the invitation and the labels on the change form."""

from django import forms

from newsletter.models import Newsletter

from . import audience
from .forms import AddressField, ImportForm, SubscriberAdminForm
from .models import Label


def _default_newsletters() -> list[int]:
    return list(audience.default_newsletters().values_list("pk", flat=True))


class NewslettersField(forms.ModelMultipleChoiceField):
    """Ticked newsletters; the ones new subscribers join are ticked at first."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        super().__init__(
            queryset=Newsletter.objects.all(),
            widget=forms.CheckboxSelectMultiple,
            **kwargs,
        )


class LabelsField(forms.ModelMultipleChoiceField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Hold Ctrl (⌘ on a Mac) to choose several.")
        super().__init__(queryset=Label.objects.all(), **kwargs)


class NewLabelsField(forms.CharField):
    """Label names typed in, comma separated: cleaned, or refused with the reason."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 1000)
        kwargs.setdefault(
            "help_text",
            "New (or existing) label names, separated by commas. At most "
            f"{audience.LABEL_MAX_LENGTH} characters each.",
        )
        super().__init__(**kwargs)

    def clean(self, value) -> list[str]:
        value = super().clean(value)
        try:
            names = audience.parse_label_names(value or "")
        except audience.LabelRefused as exc:
            raise forms.ValidationError(f"Label {exc}.") from None
        if len(names) > audience.LABELS_PER_ROW:
            raise forms.ValidationError(
                f"At most {audience.LABELS_PER_ROW} labels at once."
            )
        return names


class _PlacingMixin:
    """newsletters, labels and new_labels, and the label names they add up to."""

    cleaned_data: dict
    fields: dict

    def drop_empty_labels(self) -> None:
        """Leave out the list of existing labels while there is none."""
        if "labels" in self.fields and not Label.objects.exists():
            del self.fields["labels"]

    def label_names(self) -> list[str]:
        names = [label.name for label in self.cleaned_data.get("labels") or []]
        return names + list(self.cleaned_data.get("new_labels") or [])


class ImportOptionsForm(_PlacingMixin, ImportForm):
    newsletters = NewslettersField(
        help_text="Everyone in the file joins the ticked newsletters, subscribers "
        "already here too (nobody leaves one). The newsletters new subscribers join "
        "are ticked at first; untick all to join none."
    )
    labels = LabelsField(help_text="Give everyone in the file these labels.")
    new_labels = NewLabelsField()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["newsletters"].initial = _default_newsletters()
        self.drop_empty_labels()


class NewsletterChoiceForm(forms.Form):
    newsletter = forms.ModelChoiceField(queryset=Newsletter.objects.all())


class LabelChoiceForm(_PlacingMixin, forms.Form):
    """Existing labels, and (when adding) new names."""

    labels = LabelsField()
    new_labels = NewLabelsField()

    def __init__(self, *args, adding: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not adding:
            del self.fields["new_labels"]
        self.drop_empty_labels()

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not self.label_names():
            raise forms.ValidationError("Choose a label, or type a new one.")
        return cleaned


class InvitationForm(_PlacingMixin, forms.Form):
    email = AddressField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    name = forms.CharField(max_length=200, required=False)
    newsletters = NewslettersField(
        help_text="What they will receive once they confirm."
    )
    labels = LabelsField()
    new_labels = NewLabelsField()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["newsletters"].initial = _default_newsletters()
        self.drop_empty_labels()


class SubscriberPlacingForm(SubscriberAdminForm):
    """The change form, with the subscriber's newsletters and labels."""

    # Not named after the model's field: the admin refuses a many-to-many with
    # its own through model (Subscription) in a form (admin.E013), so the admin
    # saves it (SubscriberAdmin.save_related).
    receives = NewslettersField(
        label="Newsletters", help_text="The newsletters they receive."
    )
    new_labels = NewLabelsField(label="Add new labels")

    class Meta(SubscriberAdminForm.Meta):
        fields = [*SubscriberAdminForm.Meta.fields, "labels"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["receives"].initial = list(
                self.instance.newsletters.values_list("pk", flat=True)
            )
        else:
            self.fields["receives"].initial = _default_newsletters()
