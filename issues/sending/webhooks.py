"""Provider tracking events (django-anymail): bounces and complaints.

Only the configured provider's webhook is reachable, and only with the webhook
secret set; the signal receiver acts only on events that view sent, so no other
path (another provider's view mounted elsewhere, code sending anymail's public
signal) can suppress an address.
"""

from anymail.signals import tracking
from django.dispatch import receiver
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from newsletter.email_provider import (
    anymail_provider,
    tracking_webhook_view,
    webhook_secret,
)


@csrf_exempt
def tracking_webhook(request: HttpRequest, provider: str) -> HttpResponseBase:
    """Hand the request to anymail's view for the configured provider, else 404."""
    view_class = tracking_webhook_view()
    # Without the secret anymail would accept unauthenticated posts (with only a
    # warning): the webhook stays off rather than let anyone suppress addresses.
    if view_class is None or provider != anymail_provider() or not webhook_secret():
        raise Http404("No tracking webhook here.")
    return view_class.as_view()(request)


@receiver(tracking, dispatch_uid="quire-sending-tracking")
def handle_tracking_event(sender, event, esp_name, **kwargs) -> None:
    # Act only on events from the view tracking_webhook mounts, which has checked
    # the basic auth (and the provider's signature) before sending the signal.
    if sender is not tracking_webhook_view() or not webhook_secret():
        return
    from .events import record_email_event

    record_email_event(event=event, esp_name=esp_name)
