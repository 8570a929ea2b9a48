"""The issue report (a panel and a page of its own) and the most read papers.

Both only for staff with the "Can see how issues did" permission.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from issues.models import Issue
from issues.sending import admin as sending_admin

from .reports import hourly_chart, issue_report, most_read_papers

PERMISSION = "analytics.view_report"


class IssueAdmin(sending_admin.IssueAdmin):
    """The issue admin with sending's pages and the issue's report."""

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/report/",
                self.admin_site.admin_view(require_safe(self.report_view)),
                name="analytics_report",
            ),
            path(
                "papers-read/",
                self.admin_site.admin_view(require_safe(self.papers_view)),
                name="analytics_papers",
            ),
        ]
        return urls + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        if request.user.has_perm(PERMISSION):
            issue = (
                Issue.objects.filter(pk=object_id).first()
                if str(object_id).isdigit()
                else None
            )
            if issue is not None and hasattr(issue, "send"):
                extra_context["issue_report"] = issue_report(issue)
                extra_context["issue_report_url"] = reverse(
                    "admin:analytics_report", args=[issue.pk]
                )
        return super().change_view(request, object_id, form_url, extra_context)

    def _check(self, request) -> None:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied

    def report_view(self, request, pk: int):
        self._check(request)
        issue = get_object_or_404(
            Issue.objects.select_related("newsletter", "segment"), pk=pk
        )
        report = issue_report(issue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "issue": issue,
            "title": f"How “{issue.title}” did",
            "report": report,
            "papers": report.papers,
            "change_url": reverse("admin:issues_issue_change", args=[issue.pk]),
            "hourly_chart": hourly_chart(report),
        }
        return TemplateResponse(request, "admin/analytics/report.html", context)

    def papers_view(self, request):
        self._check(request)
        raw = request.GET.get("year", "")
        year = int(raw) if raw.isdigit() and len(raw) == 4 else timezone.now().year
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Most read papers of {year}",
            "year": year,
            "papers": most_read_papers(year=year),
        }
        return TemplateResponse(request, "admin/analytics/papers.html", context)


# The same move sending makes: this subclass takes the place of sending's.
admin.site.unregister(Issue)
admin.site.register(Issue, IssueAdmin)
