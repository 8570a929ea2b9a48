"""The Label and Segment admins: each segment's page says how many it matches now."""

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from .models import Label, Segment
from .segments import segment_count


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "subscriber_count", "created"]
    search_fields = ["name"]

    def get_queryset(self, request):
        # One grouped count for the whole page, not a query per label.
        return (
            super().get_queryset(request).annotate(n_subscribers=Count("subscribers"))
        )

    @admin.display(description="subscribers", ordering="n_subscribers")
    def subscriber_count(self, obj) -> int:
        return obj.n_subscribers


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "newsletter", "membership", "updated"]
    search_fields = ["name", "description"]
    filter_horizontal = ["labels"]
    readonly_fields = ["matches_now"]
    fieldsets = [
        (None, {"fields": ["name", "description", "matches_now"]}),
        (
            "Who is in it",
            {
                "fields": [
                    "newsletter",
                    "labels",
                    "membership",
                    "source",
                    "joined_after",
                    "joined_before",
                    "engaged_in_last",
                ],  # fmt: skip
                "description": "Every condition you set must hold; leave one "
                "empty to ignore it. An issue sent to the segment goes to those it "
                "matches when it is sent, and to nobody else.",
            },
        ),
    ]

    @admin.display(description="matches now")
    def matches_now(self, obj: Segment | None) -> str:
        # One COUNT of the segment's query, on its own page only: the list would
        # run one per row.
        if obj is None or obj.pk is None:
            return "Save the segment to see how many subscribers it matches."
        n = segment_count(obj)
        return format_html(
            '<strong class="segment-count" data-count="{}">{} subscriber{}</strong> '
            "receiving email, as saved.",
            n,
            n,
            "" if n == 1 else "s",
        )
