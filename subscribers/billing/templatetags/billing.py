from django import template

from ..models import Membership
from ..money import format_amount

register = template.Library()


@register.filter
def money(amount, currency="usd"):
    """Show an amount in cents as a price: {{ amount|money:currency }}."""
    return format_amount(amount, currency or "usd")


@register.simple_tag
def membership_for(subscriber):
    """Return the subscriber's membership, or None."""
    if subscriber is None:
        return None
    return Membership.objects.of(subscriber)
