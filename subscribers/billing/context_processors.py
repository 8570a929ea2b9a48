from django.http import HttpRequest

from .stripe_api import is_configured


def billing(request: HttpRequest) -> dict:
    """Tell templates whether paid subscriptions can be bought (`paid_enabled`)."""
    return {"paid_enabled": is_configured()}
