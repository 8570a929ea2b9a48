"""The email provider's tracking webhooks (django-anymail) under /email/events/.

Each provider posts to /email/events/<provider>/tracking/, e.g.
/email/events/postmark/tracking/, authenticated as anymail requires: HTTP basic auth
with ANYMAIL_WEBHOOK_SECRET, plus the provider's own signature where it has one.
"""

from django.urls import include, path

urlpatterns = [
    path("email/events/", include("anymail.urls")),
]
