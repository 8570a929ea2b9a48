from django.apps import AppConfig

from subscribers import signals


class BillingConfig(AppConfig):
    name = "subscribers.billing"
    label = "billing"
    verbose_name = "Paid tiers"

    def ready(self) -> None:
        # Imported once the apps are loaded: the receivers use the models.
        from subscribers.segments import register_condition

        from . import receivers  # (the same reason)
        from .segments import membership_condition  # (the same reason)

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
        # Segments are resolved in subscribers, which cannot read memberships: the
        # membership condition (free, paid, ...) is billing's to add.
        register_condition("membership", membership_condition)
