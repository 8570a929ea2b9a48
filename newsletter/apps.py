from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = "Site"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401
