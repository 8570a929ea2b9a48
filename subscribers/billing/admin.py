from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils import timezone

from subscribers import admin as subscribers_admin
from subscribers.models import Subscriber

from . import services
from .models import CheckoutClaim, Membership, StripeEvent, Tier
from .money import format_amount


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "monthly_price",
        "yearly_price",
        "active",
        "is_founding",
        "trial_days",
        "member_count",
        "stripe_product_id",
    ]
    list_filter = ["active", "is_founding"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "benefits", "position"]}),
        (
            "Price",
            {
                "fields": [
                    "currency",
                    "monthly_amount",
                    "yearly_amount",
                    "trial_days",
                    "is_founding",
                    "active",
                ]
            },
        ),
        (
            "Stripe",
            {
                "description": "Run <code>python manage.py sync_stripe_tiers</code> "
                "after saving to create or update the product and prices in Stripe.",
                "fields": [
                    "stripe_product_id",
                    "stripe_monthly_price_id",
                    "stripe_yearly_price_id",
                ],
            },
        ),
    ]

    def get_queryset(self, request):
        # Django leaves Meta.ordering out of a GROUP BY query: keep the tiers'.
        return (
            super()
            .get_queryset(request)
            .annotate(_members=Count("members"))
            .order_by(*Tier._meta.ordering)
        )

    @admin.display(description="members", ordering="_members")
    def member_count(self, tier):
        return tier._members

    @admin.display(description="monthly")
    def monthly_price(self, tier):
        return format_amount(tier.monthly_amount, tier.currency) or "—"

    @admin.display(description="yearly")
    def yearly_price(self, tier):
        return format_amount(tier.yearly_amount, tier.currency) or "—"


class ComplimentaryForm(forms.Form):
    until = forms.DateTimeField(
        required=False,
        help_text="Leave empty for no end. Format: 2027-01-31 or 2027-01-31 12:00.",
        widget=forms.DateTimeInput(attrs={"placeholder": "2027-01-31"}),
    )
    tier = forms.ModelChoiceField(
        queryset=Tier.objects.all(), required=False, help_text="Optional."
    )


def can_grant_complimentary(request) -> bool:
    """Return whether the user may give (or extend) complimentary memberships."""
    opts = Membership._meta
    return request.user.has_perms(
        [
            f"{opts.app_label}.{get_permission_codename(action, opts)}"
            for action in ("add", "change")
        ]
    )


def grant_complimentary_form(modeladmin, request, *, subscribers, selected, action):
    """Ask for an optional end date and tier, then grant complimentary access."""
    if "apply" in request.POST:
        form = ComplimentaryForm(request.POST)
        if form.is_valid():
            count = services.grant_complimentary_membership(
                subscribers=subscribers,
                until=form.cleaned_data["until"],
                tier=form.cleaned_data["tier"],
            )
            modeladmin.message_user(
                request,
                f"Granted complimentary membership to {count} subscriber(s).",
                messages.SUCCESS,
            )
            return None
    else:
        form = ComplimentaryForm()
    return TemplateResponse(
        request,
        "admin/billing/membership/grant_complimentary.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Grant complimentary membership",
            # Its title in the theme's heading (unfold/helpers/welcomemsg.html).
            "page_title": "Grant complimentary membership",
            "emails": list(subscribers.values_list("email", flat=True)[:200]),
            "count": subscribers.count(),
            "selected": selected,
            "action": action,
            "form": form,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        },
    )


# Needs has_grant_complimentary_permission() on the admin that lists it.
@admin.action(
    description="Grant complimentary membership", permissions=["grant_complimentary"]
)
def grant_complimentary_membership(modeladmin, request, queryset):
    """Subscriber admin action: give the selected subscribers paid access."""
    return grant_complimentary_form(
        modeladmin,
        request,
        subscribers=queryset,
        selected=list(queryset.values_list("pk", flat=True)),
        action="grant_complimentary_membership",
    )


class SubscriberAdmin(subscribers_admin.SubscriberAdmin):
    """The subscribers' list with paid tiers' action: grant complimentary access."""

    actions = [
        *subscribers_admin.SubscriberAdmin.actions,
        grant_complimentary_membership,
    ]

    def has_grant_complimentary_permission(self, request) -> bool:
        return can_grant_complimentary(request)


# subscribers sits below billing and cannot import it, so billing extends the
# Subscriber admin from here: its subclass takes the place of the one registered
# by subscribers/admin.py (imported above, so that one is registered first).
admin.site.unregister(Subscriber)
admin.site.register(Subscriber, SubscriberAdmin)


def billing_summary(now=None) -> dict:
    """Return the admin's headline figures: paying members, MRR, cancellations."""
    now = now or timezone.now()
    paying = Membership.objects.paying()
    mrr = paying.monthly_revenue()
    return {
        "paying_members": paying.count(),
        "trialing_members": Membership.objects.filter(
            status=Membership.Status.TRIALING
        ).count(),
        "mrr": [format_amount(total, currency) for currency, total in mrr.items()]
        or [format_amount(0, "usd")],
        "cancellations_30d": Membership.objects.filter(
            canceled_at__gte=now - timedelta(days=30)
        ).count(),
    }


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    change_list_template = "admin/billing/membership/change_list.html"
    list_display = [
        "subscriber",
        "tier",
        "status",
        "price",
        "current_period_end",
        "cancel_at_period_end",
        "complimentary",
        "complimentary_until",
        "paid_access",
    ]
    list_filter = ["status", "tier", "complimentary", "cancel_at_period_end"]
    search_fields = [
        "subscriber__email",
        "stripe_customer_id",
        "stripe_subscription_id",
    ]
    list_select_related = ["subscriber", "tier"]
    raw_id_fields = ["subscriber"]
    actions = ["grant_complimentary", "end_complimentary"]
    readonly_fields = [
        "stripe_synced_at",
        "past_due_since",
        "canceled_at",
        "welcome_sent_at",
        "ended_sent_at",
        "last_failed_invoice_attempt",
        "created",
        "updated",
    ]

    @admin.display(description="price")
    def price(self, membership):
        if not membership.amount:
            return "—"
        return (
            f"{format_amount(membership.amount, membership.currency)}"
            f"/{membership.interval or '?'}"
        )

    @admin.display(boolean=True, description="paid access")
    def paid_access(self, membership):
        return membership.has_paid_access()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "billing_summary": billing_summary()}
        return super().changelist_view(request, extra_context=extra_context)

    def has_grant_complimentary_permission(self, request) -> bool:
        return can_grant_complimentary(request)

    @admin.action(
        description="Grant complimentary membership",
        permissions=["grant_complimentary"],
    )
    def grant_complimentary(self, request, queryset):
        return grant_complimentary_form(
            self,
            request,
            subscribers=Subscriber.objects.filter(
                pk__in=queryset.values("subscriber_id")
            ),
            selected=list(queryset.values_list("pk", flat=True)),
            action="grant_complimentary",
        )

    @admin.action(description="End complimentary membership", permissions=["change"])
    def end_complimentary(self, request, queryset):
        count = services.end_complimentary_membership(memberships=queryset)
        self.message_user(request, f"Ended {count} complimentary membership(s).")


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "status", "created_at", "received_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "object_id"]
    actions = ["process_again"]
    readonly_fields = [
        "event_id",
        "type",
        "object_id",
        "created_at",
        "payload",
        "status",
        "error",
        "received_at",
        "processed_at",
        "retry_at",
    ]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Process failed events again", permissions=["change"])
    def process_again(self, request, queryset):
        count = services.requeue_stripe_events(events=queryset)
        self.message_user(request, f"Queued {count} event(s) again.")


@admin.register(CheckoutClaim)
class CheckoutClaimAdmin(admin.ModelAdmin):
    """Paid checkouts waiting for their address to confirm (read only)."""

    list_display = [
        "subscriber",
        "tier",
        "stripe_subscription_id",
        "created",
        "claimed_at",
    ]
    list_filter = [("claimed_at", admin.EmptyFieldListFilter)]
    search_fields = ["subscriber__email", "stripe_subscription_id", "stripe_session_id"]
    readonly_fields = [
        "subscriber",
        "tier",
        "stripe_session_id",
        "stripe_subscription_id",
        "stripe_customer_id",
        "created",
        "claimed_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
