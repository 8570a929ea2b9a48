"""Sending in the admin.

Here the Send, Delivery and EmailEvent admins, and the Issue admin with sending's
pages; ``views`` those pages (publish, schedule, test, preview, pause, resume,
retry) as ``SendingAdminMixin``; ``forms`` their forms; ``progress`` what the send
panel shows; ``welcome`` the welcome emails (WelcomeStep) admin.
"""

from typing import cast

from django.contrib import admin

from issues import admin as issues_admin
from issues.models import Issue

from ..models import Delivery, EmailEvent, Send, WelcomeStep
from .views import SendingAdminMixin
from .welcome import WelcomeStepAdmin

__all__ = ["IssueAdmin", "WelcomeStepAdmin"]


class IssueAdmin(SendingAdminMixin, issues_admin.IssueAdmin):
    """The issue admin with publishing, scheduling, test emails and the send panel."""


# issues sits below sending and cannot import it, so sending extends the Issue
# admin from here: its subclass takes the place of the one registered by
# issues/admin.py (imported above, so that one is registered first).
admin.site.unregister(Issue)
admin.site.register(Issue, IssueAdmin)
admin.site.register(WelcomeStep, WelcomeStepAdmin)


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
    readonly_fields = [
        "paused_reason",
        *cast(list[str], list_display),
        "accepted_count",
        "refused_count",
        "reported_bounce_count",
        "complaint_count",
        "last_error",
    ]
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
