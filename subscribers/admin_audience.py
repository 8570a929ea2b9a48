"""The Subscriber admin's newsletters and labels: list filters, the bulk actions and
their page, and the invitation page. Wired into SubscriberAdmin by admin.py."""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from newsletter.models import Newsletter

from . import audience, invitations
from .addresses import InvalidAddress
from .admin_forms import InvitationForm, LabelChoiceForm, NewsletterChoiceForm
from .models import Label, Subscriber, Subscription

# The bulk action page lists at most this many of the chosen addresses.
SHOWN_ADDRESSES = 50


class NewsletterListFilter(admin.SimpleListFilter):
    """Subscribers of one newsletter, or of none: one EXISTS, no join, no
    DISTINCT."""

    title = "newsletter"
    parameter_name = "newsletter"

    def lookups(self, request, model_admin):
        newsletters = Newsletter.objects.values_list("pk", "name")
        return [
            *((str(pk), name) for pk, name in newsletters),
            ("none", "In no newsletter"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        subscribed = Subscription.objects.filter(subscriber=OuterRef("pk"))
        if value == "none":
            return queryset.exclude(Exists(subscribed))
        if value and value.isdigit():
            return queryset.filter(Exists(subscribed.filter(newsletter_id=int(value))))
        return queryset


class LabelListFilter(admin.SimpleListFilter):
    """Subscribers with one label, or with none."""

    title = "label"
    parameter_name = "label"

    def lookups(self, request, model_admin):
        return [
            *((str(pk), name) for pk, name in Label.objects.values_list("pk", "name")),
            ("none", "No label"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        labelled = Subscriber.labels.through.objects.filter(
            subscriber_id=OuterRef("pk")
        )
        if value == "none":
            return queryset.exclude(Exists(labelled))
        if value and value.isdigit():
            return queryset.filter(Exists(labelled.filter(label_id=int(value))))
        return queryset


def _bulk_page(modeladmin, request, queryset, *, form, title, verb, action):
    count = queryset.count()
    select_across = request.POST.get("select_across") == "1"
    return TemplateResponse(
        request,
        "admin/subscribers/subscriber/bulk_place.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            # Its title in the theme's heading (unfold/helpers/welcomemsg.html).
            "page_title": title,
            "opts": modeladmin.model._meta,
            "form": form,
            "count": count,
            "emails": list(
                queryset.order_by("email").values_list("email", flat=True)[
                    :SHOWN_ADDRESSES
                ]
            ),
            "select_across": select_across,
            # Posted back as they came: with "select all N" (select_across) the
            # list's filters, kept in the page's address, choose them again, and
            # Django still wants the page's own rows among them.
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "action": action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "verb": verb,
        },
    )


def _newsletter_action(modeladmin, request, queryset, *, joining: bool):
    action = "add_to_newsletter" if joining else "remove_from_newsletter"
    form = NewsletterChoiceForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        newsletter = form.cleaned_data["newsletter"]
        chosen = Newsletter.objects.filter(pk=newsletter.pk)
        if joining:
            count = audience.join_newsletters(subscribers=queryset, newsletters=chosen)
            text = f"Added {count} subscriber(s) to {newsletter}."
        else:
            count = audience.leave_newsletters(subscribers=queryset, newsletters=chosen)
            text = f"Took {count} subscriber(s) out of {newsletter}."
        modeladmin.message_user(request, text, messages.SUCCESS)
        return None
    return _bulk_page(
        modeladmin,
        request,
        queryset,
        form=form,
        title="Add to a newsletter" if joining else "Remove from a newsletter",
        verb="Add" if joining else "Remove",
        action=action,
    )


def _label_action(modeladmin, request, queryset, *, adding: bool):
    action = "add_label" if adding else "remove_label"
    form = LabelChoiceForm(
        request.POST if "apply" in request.POST else None, adding=adding
    )
    if form.is_valid():
        names = form.label_names()
        if adding:
            ids = audience.labels_named(names).values()
            count = audience.add_labels(
                subscribers=queryset, labels=Label.objects.filter(pk__in=ids)
            )
            text = f"Gave {count} label(s): {', '.join(names)}."
        else:
            count = audience.remove_labels(
                subscribers=queryset, labels=form.cleaned_data["labels"]
            )
            text = f"Took off {count} label(s): {', '.join(names)}."
        modeladmin.message_user(request, text, messages.SUCCESS)
        return None
    return _bulk_page(
        modeladmin,
        request,
        queryset,
        form=form,
        title="Add labels" if adding else "Remove labels",
        verb="Add" if adding else "Remove",
        action=action,
    )


@admin.action(description="Add to a newsletter…", permissions=["change"])
def add_to_newsletter(modeladmin, request, queryset):
    """Subscribe the selected subscribers to a newsletter they choose next."""
    return _newsletter_action(modeladmin, request, queryset, joining=True)


@admin.action(description="Remove from a newsletter…", permissions=["change"])
def remove_from_newsletter(modeladmin, request, queryset):
    """Take the selected subscribers out of a newsletter."""
    return _newsletter_action(modeladmin, request, queryset, joining=False)


@admin.action(description="Add labels…", permissions=["change"])
def add_label(modeladmin, request, queryset):
    """Give the selected subscribers labels, existing or new."""
    return _label_action(modeladmin, request, queryset, adding=True)


@admin.action(description="Remove labels…", permissions=["change"])
def remove_label(modeladmin, request, queryset):
    """Take labels off the selected subscribers."""
    return _label_action(modeladmin, request, queryset, adding=False)


@admin.action(
    description="Send an invitation (double opt-in) to the pending ones",
    permissions=["change"],
)
def send_invitation(modeladmin, request, queryset):
    """Email the selected pending subscribers the confirmation link."""
    count = invitations.invite_pending(
        queryset=queryset, staff_name=request.user.get_username()
    )
    skipped = queryset.count() - count
    modeladmin.message_user(
        request,
        f"Queued {count} invitation(s). {skipped} skipped: not pending, suppressed, "
        "or already emailed in the last 24 hours.",
    )


def invite_view(modeladmin, request: HttpRequest):
    """Add a subscriber by address and send them the double opt-in email."""
    if not (
        modeladmin.has_add_permission(request)
        and modeladmin.has_change_permission(request)
    ):
        raise PermissionDenied
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invitation = invitations.invite_subscriber(
                email=data["email"],
                name=data["name"],
                newsletter_ids=[n.pk for n in data["newsletters"]],
                label_names=form.label_names(),
                staff_name=request.user.get_username(),
            )
        except (invitations.InvitationRefused, InvalidAddress) as exc:
            form.add_error("email", str(exc))
        else:
            email = invitation.subscriber.email
            if invitation.sent:
                modeladmin.message_user(
                    request,
                    f"Invited {email}: the confirmation email is on its way. They "
                    "receive nothing until they follow its link.",
                    messages.SUCCESS,
                )
            else:
                modeladmin.message_user(
                    request,
                    f"{email} is pending and was emailed a confirmation link in the "
                    "last 24 hours: nothing was sent again. Try tomorrow.",
                    messages.WARNING,
                )
            if "_another" in request.POST:
                return HttpResponseRedirect(request.path)
            return HttpResponseRedirect(
                reverse(
                    "admin:subscribers_subscriber_change",
                    args=[invitation.subscriber.pk],
                )
            )
    title = "Add a subscriber and send an invitation"
    return TemplateResponse(
        request,
        "admin/subscribers/invite.html",
        {
            **modeladmin.admin_site.each_context(request),
            "opts": modeladmin.model._meta,
            "title": title,
            "page_title": title,
            "form": form,
        },
        status=400 if form.errors else 200,
    )
