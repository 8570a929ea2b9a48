"""Sending's pages in the Issue admin, under /admin/issues/issue/<id>/….

``PublishingAdminMixin``: publish, schedule, unpublish and cancel a schedule. Each is
a confirmation page (GET, changes nothing) and its button (POST), behind the change
permission, and each calls one service; a refusal there (an unknown paper
reference, a state that has moved on) is shown on the page with what to do. A
status set to "published" in the issue form goes through ``publish_issue`` too, so
that a published issue always has its Send.

``SendingAdminMixin`` (first in the Issue admin's bases) adds the test email, the
email preview and the live send panel with its pause, resume and retry buttons.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import (
    require_http_methods,
    require_POST,
    require_safe,
)

from issues.models import Issue
from issues.rendering import Reference
from subscribers.throttling import LimiterUnavailable, over_limit

from .. import services
from ..emails import Recipient, render_segment
from ..models import Delivery, Send
from .forms import ScheduleForm, TestEmailForm
from .progress import send_panel, send_progress

# Stands in for a subscriber's link token in previews, so links read as they will.
PREVIEW_TOKEN = "preview"  # noqa: S105 - not a secret
HOUR = 60 * 60
# The Paper field that a reference of each kind names (to prefill "add this paper").
PAPER_FIELD = {"arxiv": "arxiv_id", "doi": "doi", "paper": "slug"}


def unknown_reference_links(references: Iterable) -> list[dict]:
    """Return each unknown reference with a link that adds its paper, prefilled."""
    add_url = reverse("admin:issues_paper_add")
    links = []
    for text in references:
        ref = Reference.parse(str(text))
        links.append(
            {
                "text": str(text),
                "add_url": f"{add_url}?{urlencode({PAPER_FIELD[ref.kind]: ref.value})}"
                if ref is not None
                else "",
            }
        )
    return links


def refusal(exc: services.SendingError) -> dict:
    """Return what a confirmation page shows for a refused publish or schedule."""
    references = getattr(exc, "references", [])
    return {"message": str(exc), "unknown": unknown_reference_links(references)}


if TYPE_CHECKING:
    # Mixed into a ModelAdmin, whose methods and attributes it uses.
    _ModelAdmin = admin.ModelAdmin
else:
    _ModelAdmin = object


# Frozen with the send: read-only on an issue's page once it exists.
AUDIENCE_FIELDS = ["newsletter", "audience", "segment"]


class PublishingAdminMixin(_ModelAdmin):
    """Add the publish, schedule, unpublish and cancel-schedule pages to an admin."""

    def get_urls(self):
        def view(name, func):
            methods = require_http_methods(["GET", "HEAD", "POST"])
            return path(
                f"<int:pk>/{name}/",
                self.admin_site.admin_view(methods(func)),
                name=f"sending_{name}",
            )

        urls = [
            view("publish", self.publish_view),
            view("schedule", self.schedule_view),
            view("unpublish", self.unpublish_view),
            view("unschedule", self.unschedule_view),
        ]
        return urls + super().get_urls()

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # The audience was frozen into deliveries when the send began: shown, and
        # no longer a choice (a changed field would claim what did not happen).
        if obj is not None and Send.objects.filter(issue=obj).exists():
            fields += [f for f in AUDIENCE_FIELDS if f not in fields]
        return fields

    # --- helpers shared with the other sending pages ----------------------------

    def _issue(self, request, pk: int) -> Issue:
        issue = get_object_or_404(Issue, pk=pk)
        if not self.has_view_permission(request, issue):
            raise PermissionDenied
        return issue

    def _require_change(self, request, issue: Issue) -> None:
        if not self.has_change_permission(request, issue):
            raise PermissionDenied

    def _change_url(self, issue: Issue) -> str:
        return reverse("admin:issues_issue_change", args=[issue.pk])

    def _context(self, request, issue: Issue, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": issue,
            "issue": issue,
            "title": title,
            # Its title in the theme's heading (unfold/helpers/welcomemsg.html).
            "page_title": title,
            "change_url": self._change_url(issue),
            **extra,
        }

    def _refusal_now(self, issue: Issue) -> dict | None:
        """Return why publishing this issue would be refused now, or None."""
        try:
            services.check_publishable(issue=issue)
        except services.SendingError as exc:
            return refusal(exc)
        return None

    # --- the issue form's status field ------------------------------------------

    # The Issue admin saves the form its own way (save_model, save_related); these
    # run after it, still inside the admin's transaction.
    def response_add(self, request, obj, post_url_continue=None):
        self._publish_if_marked_published(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        self._publish_if_marked_published(request, obj)
        return super().response_change(request, obj)

    def _publish_if_marked_published(self, request, obj: Issue) -> None:
        # A published issue always has its Send: publishing from the status field
        # goes through the same service as "Publish now" (and sends at most once).
        # The form refused unknown references already, with the service's words.
        if obj.status != Issue.Status.PUBLISHED:
            return
        if not getattr(obj, "_published_by_form", False):
            return
        if Send.objects.filter(issue=obj).exists():
            return
        send = services.publish_issue(issue=obj)
        note = (
            f"“{obj}” is published on the site only: web-only issues are not emailed."
            if send is None
            else f"“{obj}” is published and is being sent to "
            f"{services.audience_size(issue=obj)} subscribers."
        )
        self.message_user(request, note, messages.SUCCESS)

    # --- publish, schedule ------------------------------------------------------

    def publish_view(self, request, pk: int):
        issue = self._issue(request, pk)
        self._require_change(request, issue)
        send = Send.objects.filter(issue=issue).first()
        again = issue.status == Issue.Status.UNPUBLISHED
        existing = send if issue.status == Issue.Status.PUBLISHED else None
        problem = None
        if request.method == "POST" and existing is not None:
            self.message_user(
                request, "This issue was already published and sent.", messages.INFO
            )
            return redirect(self._change_url(issue))
        if request.method == "POST":
            try:
                services.publish_issue(issue=issue)
            except services.SendingError as exc:
                problem = refusal(exc)
            else:
                if again:
                    note = f"“{issue}” is back on the site. Nobody was emailed again."
                elif issue.audience == Issue.Audience.WEB:
                    note = f"“{issue}” is published on the site; nobody is emailed."
                else:
                    note = f"“{issue}” is published; sending has started."
                self.message_user(request, note, messages.SUCCESS)
                return redirect(self._change_url(issue))
        elif existing is None:
            problem = self._refusal_now(issue)
        title = f"Publish “{issue}” again?" if again else f"Publish “{issue}” now?"
        return TemplateResponse(
            request,
            "admin/sending/confirm_publish.html",
            self._context(
                request,
                issue,
                title,
                counts=None if again else services.audience_counts(issue=issue),
                existing=existing,
                again=again,
                send=send,
                problem=problem,
            ),
        )

    def schedule_view(self, request, pk: int):
        issue = self._issue(request, pk)
        self._require_change(request, issue)
        published_before = Send.objects.filter(issue=issue).exists() or (
            issue.status in (Issue.Status.PUBLISHED, Issue.Status.UNPUBLISHED)
        )
        initial = {"publish_at": issue.publish_at or timezone.now() + timedelta(days=1)}
        form = ScheduleForm(request.POST or None, initial=initial)
        problem = None
        if request.method == "POST" and not published_before and form.is_valid():
            try:
                services.schedule_issue(
                    issue=issue, publish_at=form.cleaned_data["publish_at"]
                )
            except services.SendingError as exc:
                problem = refusal(exc)
            else:
                when = timezone.localtime(form.cleaned_data["publish_at"])
                self.message_user(
                    request,
                    f"“{issue}” will be published and sent on "
                    f"{when:%Y-%m-%d at %H:%M}.",
                    messages.SUCCESS,
                )
                return redirect(self._change_url(issue))
        elif not published_before:
            problem = self._refusal_now(issue)
        return TemplateResponse(
            request,
            "admin/sending/schedule.html",
            self._context(
                request,
                issue,
                f"Schedule “{issue}”",
                form=form,
                counts=services.audience_counts(issue=issue),
                existing=published_before,
                problem=problem,
                media=self.media + form.media,
            ),
        )

    # --- unpublish, cancel a schedule -------------------------------------------

    def unpublish_view(self, request, pk: int):
        issue = self._issue(request, pk)
        self._require_change(request, issue)
        if request.method == "POST":
            try:
                services.unpublish_issue(issue=issue)
            except services.SendingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"“{issue}” is off the site. Its send history is kept; "
                    "“Publish again…” puts it back without emailing anyone.",
                    messages.SUCCESS,
                )
            return redirect(self._change_url(issue))
        return TemplateResponse(
            request,
            "admin/sending/confirm_unpublish.html",
            self._context(
                request,
                issue,
                f"Unpublish “{issue}”?",
                send=Send.objects.filter(issue=issue).first(),
            ),
        )

    def unschedule_view(self, request, pk: int):
        issue = self._issue(request, pk)
        self._require_change(request, issue)
        if request.method == "POST":
            try:
                services.unschedule_issue(issue=issue)
            except services.SendingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"“{issue}” is a draft again; it will not be published until "
                    "you publish or schedule it.",
                    messages.SUCCESS,
                )
            return redirect(self._change_url(issue))
        return TemplateResponse(
            request,
            "admin/sending/confirm_unschedule.html",
            self._context(request, issue, f"Cancel the schedule of “{issue}”?"),
        )


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
            extra_context["send_panel"] = send_panel(issue)
            # From the list stored when the issue was saved: no render per page.
            extra_context["issue_notes"] = {
                "unknown": unknown_reference_links(issue.unknown_references)
            }
        return super().change_view(request, object_id, form_url, extra_context)

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
