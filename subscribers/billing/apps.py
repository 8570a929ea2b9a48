from django.apps import AppConfig

from subscribers import signals


class BillingConfig(AppConfig):
    name = "subscribers.billing"
    label = "billing"
    verbose_name = "Paid tiers"

    def ready(self) -> None:
        # Imported once the apps are loaded: the receivers use the models.
        from . import receivers

        # subscribers sits below billing and cannot call it: it announces an
        # erasure or an export, and billing does its part (subscribers/signals.py).
        signals.subscriber_erasing.connect(
            receivers.cancel_paid_subscriptions,
            dispatch_uid="billing.cancel_paid_subscriptions",
        )
        signals.subscriber_data_exporting.connect(
            receivers.add_membership_to_export,
            dispatch_uid="billing.add_membership_to_export",
        )
