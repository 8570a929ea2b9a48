"""Provider tracking events (django-anymail): bounces and complaints."""

from anymail.signals import tracking
from django.dispatch import receiver


@receiver(tracking, dispatch_uid="quire-sending-tracking")
def handle_tracking_event(sender, event, esp_name, **kwargs) -> None:
    from .events import record_email_event

    record_email_event(event=event, esp_name=esp_name)
