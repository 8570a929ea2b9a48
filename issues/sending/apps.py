from django.apps import AppConfig


class SendingConfig(AppConfig):
    name = "issues.sending"
    label = "sending"
    verbose_name = "Sending"

    def ready(self) -> None:
        from newsletter.health import register_check

        # Connect anymail's tracking signal (bounces, complaints) to our service.
        from . import webhooks  # noqa: F401
        from .health import check_sending

        # /healthz lives in newsletter, the lowest layer, which may not import
        # sending: it runs the checks apps register here (see newsletter.health).
        register_check("sending", check_sending)
