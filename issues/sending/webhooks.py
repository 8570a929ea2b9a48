"""The email provider's tracking webhook (django-anymail): bounces and complaints.

Only the configured provider's webhook is reachable, and only with the webhook
secret set. anymail's view then sends its tracking signal, which
receivers.handle_tracking_event turns into provider_events.record_email_event.
"""

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
