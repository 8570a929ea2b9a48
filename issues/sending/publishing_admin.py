"""Publishing in the admin: publish, schedule, unpublish and cancel a schedule.

Each is a confirmation page (GET, changes nothing) and its button (POST), behind the
change permission, and each calls one service in ``services``; a refusal there (an
unknown paper reference, a state that has moved on) is shown on the page with what
to do. ``PublishingAdminMixin`` is the base of ``admin.SendingAdminMixin``, which
adds the test email, the email preview and the live send panel.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from issues.models import Issue
from issues.rendering import Reference

from . import services
from .models import Send

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


class ScheduleForm(forms.Form):
    publish_at = forms.SplitDateTimeField(
        label="Publish and send at",
        widget=admin.widgets.AdminSplitDateTime,
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


class PublishingAdminMixin:
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
        services.publish_issue(issue=obj)
        self.message_user(
            request,
            f"“{obj}” is published and is being sent to "
            f"{services.audience_size()} subscribers.",
            messages.SUCCESS,
        )

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
                note = (
                    f"“{issue}” is back on the site. Nobody was emailed again."
                    if again
                    else f"“{issue}” is published; sending has started."
                )
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
                counts=None if again else services.audience_counts(),
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
                counts=services.audience_counts(),
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
