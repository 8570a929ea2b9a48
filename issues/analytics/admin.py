"""The issue report (a panel and a page of its own) and the most read papers.

Both only for staff with the "Can see how issues did" permission.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_safe

from issues.models import Issue
from issues.sending import admin as sending_admin
from issues.sending.models import WelcomeStep

from .models import DailyIssueStat
from .reports import (
    conversions_subquery,
    hourly_chart,
    issue_report,
    most_read_papers,
)

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
            "change_url": _change_url(issue),
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


def _change_url(issue: Issue) -> str:
    if issue.kind == Issue.Kind.WELCOME:
        # A welcome step's content is edited as its step, not in the issue admin.
        step = WelcomeStep.objects.filter(issue=issue).values_list("pk", flat=True)
        pk = step.first()
        if pk is not None:
            return reverse("admin:sending_welcomestep_change", args=[pk])
    return reverse("admin:issues_issue_change", args=[issue.pk])


def _summed(name: str) -> Coalesce:
    """The issue's daily figure summed, as a subquery on a WelcomeStep row."""
    total = (
        DailyIssueStat.objects.filter(issue=OuterRef("issue"))
        .values("issue")
        .annotate(total=Sum(name))
        .values("total")
    )
    return Coalesce(Subquery(total, output_field=IntegerField()), 0)


# The step list's columns read from analytics, for who may see reports.
FIGURES = ("opened", "clicked", "converted")


class WelcomeStepAdmin(sending_admin.WelcomeStepAdmin):
    """The welcome emails with each step's opens, clicks, conversions and report."""

    list_display = [
        *sending_admin.WelcomeStepAdmin.list_display,
        "opened",
        "clicked",
        "converted",
    ]

    def get_queryset(self, request):
        # The figures as subqueries of the one list query, whatever the rows.
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_opened=_summed("unique_opens"),
                n_clicked=_summed("unique_clicks"),
                n_converted=conversions_subquery(),
            )
        )

    def get_list_display(self, request):
        shown = list(super().get_list_display(request))
        if not request.user.has_perm(PERMISSION):
            return [name for name in shown if name not in FIGURES]
        return shown

    @admin.display(description="opened (people)", ordering="n_opened")
    def opened(self, obj) -> int:
        return obj.n_opened

    @admin.display(description="clicked (people)", ordering="n_clicked")
    def clicked(self, obj) -> int:
        return obj.n_clicked

    @admin.display(description="became paying", ordering="n_converted")
    def converted(self, obj) -> str:
        return format_html(
            '{} · <a href="{}">report</a>',
            obj.n_converted,
            reverse("admin:analytics_report", args=[obj.issue_id]),
        )

    def step_links(self, obj: WelcomeStep) -> list[tuple[str, str]]:
        links = super().step_links(obj)
        links.append((reverse("admin:analytics_report", args=[obj.issue_id]), "Report"))
        return links


admin.site.unregister(WelcomeStep)
admin.site.register(WelcomeStep, WelcomeStepAdmin)
