"""the app config; connects its receivers"""

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "issues.analytics"
    label = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Imported once the apps are loaded: the receivers use the models.
        from subscribers.segments import register_condition
        from subscribers.signals import subscriber_left

        from .receivers import count_unsubscribe  # (the same reason)
        from .segments import engagement_condition  # (the same reason)

        # Leaving happens in subscribers, which cannot import this app: the
        # unsubscribe link names the issue it came in, and the signal carries it.
        subscriber_left.connect(count_unsubscribe, dispatch_uid="analytics.unsub")
        # Segments are resolved in subscribers, which cannot read who opened what:
        # the engagement condition is this app's to add.
        register_condition("engagement", engagement_condition)
