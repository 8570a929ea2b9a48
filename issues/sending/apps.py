from anymail.signals import tracking
from django.apps import AppConfig

from subscribers.signals import newsletter_of_sent_issue, subscriber_erasing


class SendingConfig(AppConfig):
    name = "issues.sending"
    label = "sending"
    verbose_name = "Sending"

    def ready(self) -> None:
        # Imported once the apps are loaded: these modules use the models.
        from newsletter.health import register_check

        # Beat's entry points that call services (jobs.py) are Celery tasks too;
        # autodiscovery only imports tasks.py, so they are registered here.
        from . import jobs  # noqa: F401
        from .health import check_sending
        from .receivers import (
            forget_erased_recipients,
            handle_tracking_event,
            sent_issue_newsletter,
        )

        # /healthz lives in newsletter, the lowest layer, which may not import
        # sending: it runs the checks apps register here (see newsletter.health).
        register_check("sending", check_sending)

        # Erasing a subscriber scrubs the send history (subscribers/signals.py).
        subscriber_erasing.connect(
            forget_erased_recipients,
            dispatch_uid="sending.forget_erased_recipients",
        )
        # Which newsletter an unsubscribe link leaves: the issue's, if the
        # subscriber was sent it (subscribers/signals.py).
        newsletter_of_sent_issue.connect(
            sent_issue_newsletter,
            dispatch_uid="sending.newsletter_of_sent_issue",
        )
        # Bounces and complaints from the provider's webhook (webhooks.py).
        tracking.connect(handle_tracking_event, dispatch_uid="quire-sending-tracking")
