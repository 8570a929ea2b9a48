from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("pricing/", views.pricing, name="pricing"),
    path("pricing/subscribe/", views.subscribe, name="subscribe"),
    path("billing/success/", views.success, name="success"),
    path(
        "billing/success/email/",
        views.email_after_checkout,
        name="email_after_checkout",
    ),
    path("billing/cancel/", views.cancel, name="cancel"),
    path("billing/claim/<str:token>/", views.claim, name="claim"),
    path("billing/portal/", views.manage_billing, name="portal"),
    path("stripe/webhook/", views.stripe_webhook, name="webhook"),
    # The private feed itself is the issues app's (issues/feeds.py).
    path("billing/feed/reset/", views.reset_feed, name="reset_feed"),
]
