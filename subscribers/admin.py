import io
from datetime import timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from newsletter.models import Newsletter

from . import admin_audience, audience, services
from .admin_forms import ImportOptionsForm, SubscriberPlacingForm
from .exporting import iter_export_lines
from .importing import ImportFailed, import_subscribers
from .models import Label, Subscriber, Suppression
from .segment_admin import LabelAdmin, SegmentAdmin

__all__ = ["LabelAdmin", "SegmentAdmin", "SubscriberAdmin", "SuppressionAdmin"]


def _export_response(queryset, filename: str = "subscribers.csv"):
    response = StreamingHttpResponse(
        iter_export_lines(queryset), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    """The audience list. Apps above subscribers extend it from their own admin
    module (a subclass registered in its place), as paid tiers do."""

    form = SubscriberPlacingForm
    change_list_template = "admin/subscribers/subscriber/change_list.html"
    list_display = [
        "email",
        "name",
        "status",
        "paused",
        "source",
        "created",
        "confirmed_at",
        "newsletter_names",
        "label_names",
    ]
    list_filter = [
        "status",
        "source",
        "paused",
        admin_audience.NewsletterListFilter,
        admin_audience.LabelListFilter,
        ("created", admin.DateFieldListFilter),
    ]
    search_fields = ["email", "name"]
    date_hierarchy = "created"
    ordering = ["-created"]
    list_per_page = 100
    show_full_result_count = False
    actions = [
        "unsubscribe",
        "resend_confirmation",
        admin_audience.send_invitation,
        admin_audience.add_to_newsletter,
        admin_audience.remove_from_newsletter,
        admin_audience.add_label,
        admin_audience.remove_label,
        "export_csv",
    ]
    readonly_fields = [
        "token",
        "created",
        "confirmed_at",
        "unsubscribed_at",
        "consent_at",
        "consent_ip",
        "consent_user_agent",
        "consent_source",
        "consent_text_version",
    ]
    fieldsets = [
        (None, {"fields": ["email", "name", "status", "paused", "source"]}),
        ("Newsletters and labels", {"fields": ["receives", "labels", "new_labels"]}),
        ("Dates", {"fields": ["created", "confirmed_at", "unsubscribed_at"]}),
        (
            "Consent record",
            {
                "fields": [
                    "consent_at",
                    "consent_ip",
                    "consent_user_agent",
                    "consent_source",
                    "consent_text_version",
                ]
            },
        ),
        ("Links", {"fields": ["token"], "classes": ["collapse"]}),
    ]

    def get_changelist(self, request, **kwargs):
        changelist = super().get_changelist(request, **kwargs)

        class SubscriberChangeList(changelist):
            # Two queries for the page's newsletters and labels columns, not two
            # per row; the actions' query (get_queryset) stays a plain one.
            def get_results(self, request):
                super().get_results(request)
                self.result_list = self.result_list.prefetch_related(
                    "newsletters", "labels"
                )

        return SubscriberChangeList

    @admin.display(description="newsletters")
    def newsletter_names(self, subscriber) -> str:
        return ", ".join(n.name for n in subscriber.newsletters.all()) or "—"

    @admin.display(description="labels")
    def label_names(self, subscriber) -> str:
        return ", ".join(label.name for label in subscriber.labels.all()) or "—"

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # The ticked labels were saved with the form (save_m2m); the ticked
        # newsletters and the label names typed in are saved here.
        one = Subscriber.objects.filter(pk=form.instance.pk)
        if "receives" in form.cleaned_data:
            ticked = [n.pk for n in form.cleaned_data["receives"]]
            audience.leave_newsletters(
                subscribers=one, newsletters=Newsletter.objects.exclude(pk__in=ticked)
            )
            audience.join_newsletters(
                subscribers=one, newsletters=Newsletter.objects.filter(pk__in=ticked)
            )
        if form.cleaned_data.get("new_labels"):
            ids = audience.labels_named(form.cleaned_data["new_labels"])
            audience.add_labels(
                subscribers=one, labels=Label.objects.filter(pk__in=ids.values())
            )

    def invite_view(self, request: HttpRequest):
        return admin_audience.invite_view(self, request)

    def get_urls(self):
        urls = [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="subscribers_subscriber_import",
            ),
            path(
                "invite/",
                self.admin_site.admin_view(self.invite_view),
                name="subscribers_subscriber_invite",
            ),
            path(
                "export/",
                self.admin_site.admin_view(require_safe(self.export_all_view)),
                name="subscribers_subscriber_export",
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context=None):
        now = timezone.now()
        month_ago = now - timedelta(days=30)
        by_status = dict(
            Subscriber.objects.values_list("status").annotate(n=Count("pk"))
        )
        recent = Subscriber.objects.aggregate(
            new=Count("pk", filter=Q(created__gte=month_ago)),
            left=Count("pk", filter=Q(unsubscribed_at__gte=month_ago)),
        )
        extra_context = {
            **(extra_context or {}),
            "active_now": Subscriber.objects.receiving().count(),
            "new_30_days": recent["new"],
            "unsubscribed_30_days": recent["left"],
            "status_counts": [
                (value, label, by_status.get(value, 0))
                for value, label in Subscriber.Status.choices
            ],
            "import_url": reverse("admin:subscribers_subscriber_import"),
            "invite_url": reverse("admin:subscribers_subscriber_invite"),
            "export_url": reverse("admin:subscribers_subscriber_export"),
        }
        return super().changelist_view(request, extra_context=extra_context)

    @admin.action(
        description="Unsubscribe the selected subscribers", permissions=["change"]
    )
    def unsubscribe(self, request: HttpRequest, queryset) -> None:
        count = services.unsubscribe_subscribers(queryset=queryset)
        self.message_user(request, f"Unsubscribed {count} subscribers.")

    @admin.action(
        description="Send (or resend) the confirmation email", permissions=["change"]
    )
    def resend_confirmation(self, request: HttpRequest, queryset) -> None:
        count = services.resend_confirmation(queryset=queryset)
        skipped = queryset.count() - count
        self.message_user(
            request,
            f"Queued {count} confirmation emails. {skipped} skipped: not pending, "
            "or already emailed in the last 24 hours.",
        )

    # Shows what the viewer may already see, so the view permission is enough.
    @admin.action(
        description="Export the selected subscribers as CSV", permissions=["view"]
    )
    def export_csv(self, request: HttpRequest, queryset):
        return _export_response(queryset)

    def export_all_view(self, request: HttpRequest):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return _export_response(Subscriber.objects.all())

    def import_view(self, request: HttpRequest):
        if not self.has_add_permission(request):
            raise PermissionDenied
        report = None
        form = ImportOptionsForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            stream = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
            try:
                report = import_subscribers(
                    stream=stream,
                    format=form.cleaned_data["format"],
                    filename=upload.name,
                    newsletters=[n.pk for n in form.cleaned_data["newsletters"]],
                    labels=form.label_names(),
                )
            except ImportFailed as exc:
                messages.error(request, f"{exc} Nothing was imported.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import subscribers" if report is None else "Import report",
            # Its title in the theme's heading (unfold/helpers/welcomemsg.html).
            "page_title": "Import subscribers" if report is None else "Import report",
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/subscribers/import.html", context)


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email_hash", "reason", "created"]
    list_filter = ["reason"]
    search_fields = ["email_hash"]
    readonly_fields = ["email_hash", "reason", "created"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
