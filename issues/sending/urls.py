"""The email provider's tracking webhook (django-anymail) under /email/events/.

Only the provider EMAIL_BACKEND names is mounted, at
/email/events/<provider>/tracking/ (e.g. /email/events/postmark/tracking/), and only
once ANYMAIL_WEBHOOK_SECRET is set: anymail's view then requires that HTTP basic
auth, plus the provider's own signature where it has one. Every other provider's
path answers 404, so nobody can post events as a provider Quire does not use.
"""

from django.urls import path

from . import webhooks

app_name = "sending"

urlpatterns = [
    path(
        "email/events/<str:provider>/tracking/",
        webhooks.tracking_webhook,
        name="tracking_webhook",
    ),
]
