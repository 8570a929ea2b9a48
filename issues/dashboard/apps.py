from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The author's dashboard (the admin's index) and the growth pages."""

    name = "issues.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
    default_auto_field = "django.db.models.BigAutoField"
