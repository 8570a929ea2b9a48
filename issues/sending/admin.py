"""Sending in the admin: test, preview, the live send panel, and the send lists.

``SendingAdminMixin`` goes first in the Issue admin's bases; it adds the views below
under /admin/issues/issue/<id>/…, and through ``PublishingAdminMixin``
(publishing_admin.py) the publish, schedule, unpublish and cancel-schedule pages,
routing a status set to "published" in the form through ``publish_issue`` so that a
published issue always has its Send.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models.functions import Lower
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST, require_safe

from issues.models import Issue
from subscribers.throttling import LimiterUnavailable, over_limit

from . import services
from .emails import Recipient, render_segment
from .models import Delivery, EmailEvent, Send
from .publishing_admin import PublishingAdminMixin, unknown_reference_links

# Stands in for a subscriber's link token in previews, so links read as they will.
PREVIEW_TOKEN = "preview"  # noqa: S105 - not a secret
# How far back the "current rate" looks.
RATE_WINDOW = 30
FAILURES_SHOWN = 50
HOUR = 60 * 60
OUTSIDE_STAFF_LABEL = "I confirm sending to addresses outside the staff"


def send_progress(send: Send, *, now=None) -> dict:
    """Return the live figures of a send for the panel and its JSON endpoint."""
    now = now or timezone.now()
    deliveries = Delivery.objects.filter(send=send)
    counts = deliveries.counts()
    handled = sum(
        counts[s]
        for s in (
            Delivery.Status.SENT,
            Delivery.Status.FAILED,
            Delivery.Status.BOUNCED,
            Delivery.Status.SKIPPED,
        )
    )
    total = send.total
    remaining = counts[Delivery.Status.QUEUED] + counts[Delivery.Status.SENDING]
    if send.status == Send.Status.SENDING:
        recent = deliveries.filter(
            sent_at__gte=now - timedelta(seconds=RATE_WINDOW)
        ).count()
        started = cast(datetime, send.started_at)  # a sending send has started
        elapsed = min(RATE_WINDOW, (now - started).total_seconds() or 1)
        rate = recent / max(elapsed, 1)
    elif send.started_at and send.finished_at:
        duration = (send.finished_at - send.started_at).total_seconds()
        rate = counts[Delivery.Status.SENT] / duration if duration > 0 else 0
    else:
        rate = 0.0
    eta = round(remaining / rate) if rate > 0 and remaining else None
    problems = (
        deliveries.problems()
        .order_by("-possibly_duplicate", "status", "pk")
        .values("email", "status", "last_error", "attempts", "possibly_duplicate")[
            :FAILURES_SHOWN
        ]
    )
    return {
        "status": send.status,
        "status_display": send.get_status_display(),
        "paused_reason": (
            send.paused_reason if send.status == Send.Status.PAUSED else ""
        ),
        "active": send.is_active,
        "total": total,
        "sent": counts[Delivery.Status.SENT],
        "failed": counts[Delivery.Status.FAILED],
        "bounced": counts[Delivery.Status.BOUNCED],
        "skipped": counts[Delivery.Status.SKIPPED],
        "queued": counts[Delivery.Status.QUEUED],
        "sending": counts[Delivery.Status.SENDING],
        "possibly_duplicated": deliveries.filter(possibly_duplicate=True).count(),
        "percent": int(100 * handled / total) if total else 0,
        "rate": round(rate, 1),
        "eta_seconds": eta,
        "started_at": send.started_at.isoformat() if send.started_at else None,
        "finished_at": send.finished_at.isoformat() if send.finished_at else None,
        "problems": [
            {
                "email": row["email"],
                "status": row["status"],
                "error": row["last_error"],
                "attempts": row["attempts"],
                "possibly_duplicate": row["possibly_duplicate"],
            }
            for row in problems
        ],
    }


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


class SendingAdminMixin(PublishingAdminMixin):
    """Add publishing, test emails, email preview and the send panel to an admin."""

    def get_urls(self):
        def view(func):
            return self.admin_site.admin_view(func)

        urls = [
            path("<int:pk>/send-test/", view(self.send_test_view), name="sending_test"),
            # These three only show things: the view permission is enough, and
            # they answer GET (and HEAD) only.
            path(
                "<int:pk>/email-preview/",
                view(require_safe(self.email_preview_view)),
                name="sending_preview",
            ),
            path(
                "<int:pk>/email-preview/raw/",
                view(require_safe(self.email_preview_raw_view)),
                name="sending_preview_raw",
            ),
            path(
                "<int:pk>/send-status/",
                view(require_safe(self.send_status_view)),
                name="sending_status",
            ),
            path(
                "<int:pk>/send-control/<str:action>/",
                view(self.send_control_view),
                name="sending_control",
            ),
        ]
        return urls + super().get_urls()

    # --- the issue's change page -----------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        try:
            issue = Issue.objects.get(pk=object_id)
        except (Issue.DoesNotExist, ValueError):
            issue = None
        if issue is not None:
            extra_context["send_panel"] = self.send_panel_context(issue)
            # From the list stored when the issue was saved: no render per page.
            extra_context["issue_notes"] = {
                "unknown": unknown_reference_links(issue.unknown_references)
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def send_panel_context(self, issue: Issue) -> dict:
        send = Send.objects.filter(issue=issue).first()
        return {
            "send": send,
            "progress": send_progress(send) if send else None,
            "status_url": reverse("admin:sending_status", args=[issue.pk]),
            "pause_url": reverse("admin:sending_control", args=[issue.pk, "pause"]),
            "resume_url": reverse("admin:sending_control", args=[issue.pk, "resume"]),
            "retry_url": reverse("admin:sending_control", args=[issue.pk, "retry"]),
            "publish_url": reverse("admin:sending_publish", args=[issue.pk]),
            "schedule_url": reverse("admin:sending_schedule", args=[issue.pk]),
            "unpublish_url": reverse("admin:sending_unpublish", args=[issue.pk]),
            "unschedule_url": reverse("admin:sending_unschedule", args=[issue.pk]),
            "test_url": reverse("admin:sending_test", args=[issue.pk]),
            "preview_url": reverse("admin:sending_preview", args=[issue.pk]),
        }

    # --- test email and preview ------------------------------------------------

    def send_test_view(self, request, pk: int):
        # Emailing a draft or paid issue out is acting on it: the change permission.
        issue = self._issue(request, pk)
        self._require_change(request, issue)
        form = TestEmailForm(
            request.POST or None, initial={"emails": request.user.email or ""}
        )
        status = 200
        if request.method == "POST" and form.is_valid():
            limited = self._test_sends_limited(request)
            if limited is not None:
                status, note = limited
                form.add_error(None, note)
            else:
                try:
                    sent = services.send_test_email(
                        issue=issue,
                        emails=form.cleaned_data["emails"],
                        segment=form.cleaned_data["segment"],
                    )
                except services.SendingError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(
                        request,
                        f"Test email sent to {', '.join(form.cleaned_data['emails'])}"
                        f" ({sent}). Nothing was published.",
                        messages.SUCCESS,
                    )
                    return redirect(self._change_url(issue))
        return TemplateResponse(
            request,
            "admin/sending/send_test.html",
            self._context(request, issue, f"Send a test of “{issue}”", form=form),
            status=status,
        )

    def _test_sends_limited(self, request) -> tuple[int, str] | None:
        """Count one test send by this user; return (status, why) once over limit."""
        limit = settings.QUIRE_TEST_SENDS_PER_HOUR
        try:
            over = over_limit(
                f"test-send:user:{request.user.pk}", limit=limit, window=HOUR
            )
        except LimiterUnavailable:
            return 503, (
                "Test emails cannot be counted just now (the cache is not "
                "answering), so none was sent. Try again in a minute."
            )
        if over:
            return 429, (
                f"You sent {limit} tests in the last hour, the most allowed; "
                "nothing was sent. Try again later."
            )
        return None

    def _preview(self, request, pk: int):
        """Return the issue, the segment asked for, its email and a sample reader."""
        issue = self._issue(request, pk)
        segment = request.GET.get("segment", "free")
        if segment not in Delivery.Segment.values:
            raise Http404
        prepared = render_segment(issue=issue, segment=segment)
        sample = Recipient(
            email=request.user.email or "reader@example.org", token=PREVIEW_TOKEN
        )
        return issue, segment, prepared, sample

    def email_preview_view(self, request, pk: int):
        issue, segment, prepared, sample = self._preview(request, pk)
        return TemplateResponse(
            request,
            "admin/sending/email_preview.html",
            self._context(
                request,
                issue,
                f"Email preview of “{issue}”",
                segment=segment,
                segments=Delivery.Segment.choices,
                subject=prepared.subject,
                from_header=prepared.from_header,
                text=prepared.personalised_text(sample),
                raw_url=reverse("admin:sending_preview_raw", args=[issue.pk])
                + f"?segment={segment}",
            ),
        )

    @xframe_options_sameorigin
    def email_preview_raw_view(self, request, pk: int):
        _issue, _segment, prepared, sample = self._preview(request, pk)
        response = HttpResponse(prepared.personalised_html(sample))
        response["Content-Security-Policy"] = "script-src 'none'"
        return response

    # --- the live panel --------------------------------------------------------

    def send_status_view(self, request, pk: int):
        issue = self._issue(request, pk)
        send = Send.objects.filter(issue=issue).first()
        if send is None:
            return JsonResponse({"status": None})
        return JsonResponse(send_progress(send))

    def send_control_view(self, request, pk: int, action: str):
        return require_POST(self._send_control)(request, pk, action)

    def _send_control(self, request, pk: int, action: str):
        issue = self._issue(request, pk)
        self._require_change(request, issue)
        send = get_object_or_404(Send, issue=issue)
        if action == "pause":
            services.pause_send(send=send)
            note = "Sending is paused."
        elif action == "resume":
            services.resume_send(send=send)
            note = "Sending resumed."
        elif action == "retry":
            note = f"{services.retry_failed(send=send)} failed emails queued again."
        else:
            raise Http404
        self.message_user(request, note, messages.SUCCESS)
        return redirect(self._change_url(issue))


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ["email", "segment", "status", "attempts", "last_error", "sent_at"]
    readonly_fields = cast(list[str], fields)
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = "Failed, bounced or possibly duplicated"

    def get_queryset(self, request):
        return super().get_queryset(request).problems()


@admin.register(Send)
class SendAdmin(admin.ModelAdmin):
    list_display = [
        "issue",
        "status",
        "total",
        "sent_count",
        "failed_count",
        "bounced_count",
        "skipped_count",
        "resolved_after_crash",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status"]
    # A send changes only through its actions (pause, resume, retry failed).
    readonly_fields = ["paused_reason", *cast(list[str], list_display), "last_error"]
    inlines = [DeliveryInline]

    def has_add_permission(self, request):
        return False


class SendListFilter(admin.RelatedFieldListFilter):
    """The "By send" filter, its labels read with one query (each names its issue)."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        sends = Send.objects.select_related("issue")
        if ordering:
            sends = sends.order_by(*ordering)
        return [(send.pk, str(send)) for send in sends]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "send",
        "segment",
        "status",
        "attempts",
        "possibly_duplicate",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status", "segment", "possibly_duplicate", ("send", SendListFilter)]
    search_fields = ["email", "message_id"]
    list_select_related = ["send__issue"]
    show_full_result_count = False
    readonly_fields = [
        "send",
        "subscriber",
        "email",
        "segment",
        "status",
        "attempts",
        "last_error",
        "message_id",
        "sent_at",
        "claimed_by",
        "claimed_at",
        "next_attempt_at",
        "possibly_duplicate",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(EmailEvent)
class EmailEventAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "event_type", "email", "esp", "description"]
    list_filter = ["event_type", "esp"]
    search_fields = ["email", "message_id", "event_id"]
    readonly_fields = [f.name for f in EmailEvent._meta.fields]

    def has_add_permission(self, request):
        return False
