from django.apps import AppConfig

from subscribers.signals import subscriber_erasing


class SendingConfig(AppConfig):
    name = "issues.sending"
    label = "sending"
    verbose_name = "Sending"

    def ready(self) -> None:
        # Connect anymail's tracking signal (bounces, complaints) to our service.
        from . import webhooks  # noqa: F401

        # Imported once the apps are loaded: the receiver uses the models.
        from .receivers import forget_erased_recipients

        # Erasing a subscriber scrubs the send history (subscribers/signals.py).
        subscriber_erasing.connect(
            forget_erased_recipients, dispatch_uid="sending.forget_erased_recipients"
        )
