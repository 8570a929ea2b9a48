from django.apps import AppConfig


class SendingConfig(AppConfig):
    name = "issues.sending"
    label = "sending"
    verbose_name = "Sending"

    def ready(self) -> None:
        # Connect anymail's tracking signal (bounces, complaints) to our service.
        from . import webhooks  # noqa: F401
