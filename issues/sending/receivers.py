"""Signal receivers of sending, connected in SendingConfig.ready().

- subscribers.signals.subscriber_erasing: the subscribers app (a lower layer) may
  not import sending, so it announces an erasure and the send history is scrubbed
  here.
- subscribers.signals.newsletter_of_sent_issue: the unsubscribe page asks which
  newsletter an email's link leaves; only sending knows who was sent what.
- anymail's tracking signal: bounces and complaints reported by the email
  provider's webhook (webhooks.py) are recorded and acted on.
"""

from newsletter.email_provider import tracking_webhook_view, webhook_secret

from .models import Delivery
from .provider_events import record_email_event
from .services import forget_recipients


def forget_erased_recipients(sender, *, subscribers, email: str, **kwargs) -> None:
    """Erase the address from the send history; the send's counts stay."""
    forget_recipients(subscribers=subscribers, email=email)


def sent_issue_newsletter(
    sender, *, subscriber_id: int, issue_id: int, **kwargs
) -> int | None:
    """Return the newsletter of the issue if the subscriber was sent it, else None."""
    return (
        Delivery.objects.filter(subscriber_id=subscriber_id, send__issue_id=issue_id)
        .values_list("send__issue__newsletter_id", flat=True)
        .first()
    )


def handle_tracking_event(sender, event, esp_name, **kwargs) -> None:
    """Record a tracking event that the provider's webhook view received."""
    # Act only on events from the view webhooks.tracking_webhook mounts, which has
    # checked the basic auth (and the provider's signature) before sending the
    # signal: no other path (another provider's view mounted elsewhere, code
    # sending anymail's public signal) can suppress an address.
    if sender is not tracking_webhook_view() or not webhook_secret():
        return
    record_email_event(event=event, esp_name=esp_name)
