from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "subscribers.billing"
    label = "billing"
    verbose_name = "Paid tiers"
