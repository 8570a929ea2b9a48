"""Welcome emails in the admin: each step's subject, Markdown body, delay and
condition, its email preview and test, and how many it reached.

A step's content is an Issue of kind "welcome", written here (never in the issue
admin, which leaves those out); saving goes through ``services.save_welcome_step``.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe
from markdownx.widgets import AdminMarkdownxWidget

from issues.rendering.limits import validate_markdown_limits
from newsletter.models import Newsletter
from subscribers.throttling import LimiterUnavailable, over_limit

from .. import services
from ..emails import Recipient, render_segment
from ..models import Delivery, WelcomeStep
from .forms import TestEmailForm

# Stands in for a subscriber's link token in previews, so links read as they will.
PREVIEW_TOKEN = "preview"  # noqa: S105 - not a secret
HOUR = 60 * 60


class WelcomeStepForm(forms.ModelForm):
    subject = forms.CharField(
        max_length=300, help_text="The email's subject, and its heading."
    )
    body = forms.CharField(
        required=False,
        widget=AdminMarkdownxWidget,
        validators=[validate_markdown_limits],
        help_text="Markdown, as in an issue (paper references, a paywall break, "
        "code, footnotes). The email has no web version: it is not on the site.",
    )
    delay_days = forms.IntegerField(
        label="Days after confirming",
        min_value=0,
        max_value=3650,
        initial=0,
        help_text="0 with 0 hours: at once (within a minute of confirming).",
    )
    delay_hours = forms.IntegerField(
        label="and hours", min_value=0, max_value=23, initial=0
    )

    class Meta:
        model = WelcomeStep
        fields = ["newsletter", "condition", "active"]
        help_texts = {
            "condition": "Free subscribers only: not to paying or complimentary "
            "members. Not yet paying: not to those with a paid subscription (a "
            "trial included); complimentary members get it.",
            "active": "Sent only while active. Activating it the first time sets "
            "its start: subscribers who confirmed before that do not get it, those "
            "who confirm after do, each once. Deactivating stops adding new "
            "recipients; emails already due still go out.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        step = self.instance
        if not step.pk and "newsletter" in self.fields:
            # The first newsletter, as for a new issue (most have only one); made
            # if the site has none yet, as a new issue would.
            self.fields["newsletter"].initial = Newsletter.default()
        if step.pk and step.issue_id:
            self.fields["subject"].initial = step.issue.title
            self.fields["body"].initial = step.issue.body
            delay = step.delay or timedelta(0)
            self.fields["delay_days"].initial = delay.days
            self.fields["delay_hours"].initial = delay.seconds // 3600

    def clean(self):
        cleaned = super().clean()
        days, hours = cleaned.get("delay_days"), cleaned.get("delay_hours")
        if days is not None and hours is not None:
            self.instance.delay = timedelta(days=days, hours=hours)
        return cleaned


class WelcomeStepAdmin(admin.ModelAdmin):
    """The welcome sequence of each newsletter, a step per row."""

    form = WelcomeStepForm
    list_display = [
        "subject",
        "newsletter",
        "delay_shown",
        "condition",
        "active",
        "activated_at",
        "delivered",
    ]
    list_filter = ["newsletter", "active"]
    list_select_related = ["issue", "issue__send", "newsletter"]
    readonly_fields = ["activated_at", "email_links"]
    actions = ["activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ["newsletter", "subject", "body"]}),
        (
            "When and to whom",
            {
                "fields": [
                    "delay_days",
                    "delay_hours",
                    "condition",
                    "active",
                    "activated_at",
                ],
                "description": "Each step goes once to each subscriber of its "
                "newsletter who confirms after the step was activated, its delay "
                "after they confirmed, and stops for anyone who has left.",
            },
        ),  # fmt: skip
        ("Email", {"fields": ["email_links"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .defer("issue__body_html", "issue__free_html", "issue__paid_html")
        )

    @admin.display(description="subject", ordering="issue__title")
    def subject(self, obj: WelcomeStep) -> str:
        return obj.issue.title

    @admin.display(description="after confirming", ordering="delay")
    def delay_shown(self, obj: WelcomeStep) -> str:
        return describe_delay(obj.delay)

    @admin.display(description="delivered")
    def delivered(self, obj: WelcomeStep) -> int:
        send = getattr(obj.issue, "send", None)
        if send is None:
            return 0
        return max(send.sent_count - send.bounced_count, 0)

    @admin.display(description="email")
    def email_links(self, obj: WelcomeStep | None) -> str:
        if obj is None or obj.pk is None:
            return "Save the step to preview its email or send yourself a test."
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            self.step_links(obj),
        )

    def step_links(self, obj: WelcomeStep) -> list[tuple[str, str]]:
        """Return the step's pages: (address, label)."""
        return [
            (reverse("admin:sending_welcomestep_preview", args=[obj.pk]),
             "Preview the email"),
            (reverse("admin:sending_welcomestep_test", args=[obj.pk]),
             "Send a test"),
        ]  # fmt: skip

    def save_model(self, request, obj, form, change):
        services.save_welcome_step(
            step=obj,
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data.get("body") or "",
        )

    @admin.action(description="Activate the selected steps", permissions=["change"])
    def activate(self, request, queryset):
        changed = services.set_welcome_steps_active(steps=queryset, active=True)
        self.message_user(request, f"{changed} steps activated.", messages.SUCCESS)

    @admin.action(description="Deactivate the selected steps", permissions=["change"])
    def deactivate(self, request, queryset):
        changed = services.set_welcome_steps_active(steps=queryset, active=False)
        self.message_user(request, f"{changed} steps deactivated.", messages.SUCCESS)

    # --- preview and test ------------------------------------------------------

    def get_urls(self):
        def view(func):
            return self.admin_site.admin_view(func)

        return [
            path(
                "<int:pk>/email-preview/",
                view(require_safe(self.preview_view)),
                name="sending_welcomestep_preview",
            ),
            path(
                "<int:pk>/email-preview/raw/",
                view(require_safe(self.preview_raw_view)),
                name="sending_welcomestep_preview_raw",
            ),
            path(
                "<int:pk>/send-test/",
                view(self.send_test_view),
                name="sending_welcomestep_test",
            ),
        ] + super().get_urls()

    def _step(self, request, pk: int) -> WelcomeStep:
        step = get_object_or_404(WelcomeStep.objects.select_related("issue"), pk=pk)
        if not self.has_view_permission(request, step):
            raise PermissionDenied
        return step

    def _context(self, request, step: WelcomeStep, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": step,
            "issue": step.issue,
            "title": title,
            "page_title": title,
            "change_url": reverse("admin:sending_welcomestep_change", args=[step.pk]),
            **extra,
        }

    def _preview(self, request, pk: int):
        step = self._step(request, pk)
        segment = request.GET.get("segment", "free")
        if segment not in Delivery.Segment.values:
            raise Http404
        prepared = render_segment(issue=step.issue, segment=segment)
        sample = Recipient(
            email=request.user.email or "reader@example.org", token=PREVIEW_TOKEN
        )
        return step, segment, prepared, sample

    def preview_view(self, request, pk: int):
        step, segment, prepared, sample = self._preview(request, pk)
        return TemplateResponse(
            request,
            "admin/sending/email_preview.html",
            self._context(
                request,
                step,
                f"Email preview of “{step.issue}”",
                segment=segment,
                segments=Delivery.Segment.choices,
                subject=prepared.subject,
                from_header=prepared.from_header,
                text=prepared.personalised_text(sample),
                raw_url=reverse("admin:sending_welcomestep_preview_raw", args=[pk])
                + f"?segment={segment}",
            ),
        )

    @xframe_options_sameorigin
    def preview_raw_view(self, request, pk: int):
        _step, _segment, prepared, sample = self._preview(request, pk)
        response = HttpResponse(prepared.personalised_html(sample))
        response["Content-Security-Policy"] = "script-src 'none'"
        return response

    def send_test_view(self, request, pk: int):
        step = self._step(request, pk)
        if not self.has_change_permission(request, step):
            raise PermissionDenied
        form = TestEmailForm(
            request.POST or None, initial={"emails": request.user.email or ""}
        )
        status = 200
        if request.method == "POST" and form.is_valid():
            limited = _test_sends_limited(request)
            if limited is not None:
                status, note = limited
                form.add_error(None, note)
            else:
                try:
                    sent = services.send_test_email(
                        issue=step.issue,
                        emails=form.cleaned_data["emails"],
                        segment=form.cleaned_data["segment"],
                    )
                except services.SendingError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(
                        request,
                        f"Test email sent to {', '.join(form.cleaned_data['emails'])}"
                        f" ({sent}). No subscriber was emailed.",
                        messages.SUCCESS,
                    )
                    return redirect("admin:sending_welcomestep_change", step.pk)
        return TemplateResponse(
            request,
            "admin/sending/send_test.html",
            self._context(request, step, f"Send a test of “{step.issue}”", form=form),
            status=status,
        )


def describe_delay(delay: timedelta | None) -> str:
    """Return a delay as the author wrote it: "at once", "3 days", "1 day 2 hours"."""
    if not delay:
        return "at once"
    parts = []
    if delay.days:
        parts.append(f"{delay.days} day{'s' if delay.days != 1 else ''}")
    hours = delay.seconds // 3600
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    return " ".join(parts) or "at once"


def _test_sends_limited(request) -> tuple[int, str] | None:
    """Count one test send by this user (the issue admin's count, shared); return
    (status, why) once over the limit."""
    limit = settings.QUIRE_TEST_SENDS_PER_HOUR
    try:
        over = over_limit(f"test-send:user:{request.user.pk}", limit=limit, window=HOUR)
    except LimiterUnavailable:
        return 503, (
            "Test emails cannot be counted just now (the cache is not answering), "
            "so none was sent. Try again in a minute."
        )
    if over:
        return 429, (
            f"You sent {limit} tests in the last hour, the most allowed; nothing "
            "was sent. Try again later."
        )
    return None
