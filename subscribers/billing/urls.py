from django.urls import path

from . import feeds, views

app_name = "billing"

urlpatterns = [
    path("pricing/", views.pricing, name="pricing"),
    path("pricing/subscribe/", views.subscribe, name="subscribe"),
    path("billing/success/", views.success, name="success"),
    path("billing/cancel/", views.cancel, name="cancel"),
    path("billing/claim/<str:token>/", views.claim, name="claim"),
    path("billing/portal/", views.manage_billing, name="portal"),
    path("stripe/webhook/", views.stripe_webhook, name="webhook"),
    path("billing/feed/reset/", views.reset_feed, name="reset_feed"),
    path(
        "feed/private/<str:token>/", feeds.PrivateIssuesFeed(), name="private_feed_rss"
    ),
    path(
        "feed/private/<str:token>/atom/",
        feeds.PrivateIssuesAtomFeed(),
        name="private_feed_atom",
    ),
]
