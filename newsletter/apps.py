from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = "Site"

    def ready(self) -> None:
        # Imported for their side effect, once the apps are loaded: they register
        # the system checks and connect Celery's worker_ready signal.
        from . import checks, signals  # noqa: F401


class QuireAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with Quire's site (newsletter/adminsite.py) as admin.site."""

    # Named in INSTALLED_APPS in place of django.contrib.admin; never the
    # configuration of the newsletter app itself.
    default = False
    default_site = "newsletter.adminsite.QuireAdminSite"
