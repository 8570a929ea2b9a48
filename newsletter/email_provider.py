"""Which django-anymail provider sends Quire's email, and its tracking webhook.

Derived from EMAIL_BACKEND (``anymail.backends.postmark.EmailBackend`` is
"postmark"), at call time, so the settings a process runs with are the ones used.
"""

import re

from anymail.utils import get_anymail_setting
from django.conf import settings
from django.utils.module_loading import import_string
from django.views import View

# Each provider's tracking webhook view in django-anymail, by the name in its
# backend's module path (which is also the path anymail documents for the webhook).
TRACKING_VIEWS = {
    "amazon_ses": "anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView",
    "brevo": "anymail.webhooks.brevo.BrevoTrackingWebhookView",
    "mailersend": "anymail.webhooks.mailersend.MailerSendTrackingWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
    "mailjet": "anymail.webhooks.mailjet.MailjetTrackingWebhookView",
    "mailtrap": "anymail.webhooks.mailtrap.MailtrapTrackingWebhookView",
    "mandrill": "anymail.webhooks.mandrill.MandrillCombinedWebhookView",
    "postal": "anymail.webhooks.postal.PostalTrackingWebhookView",
    "postmark": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
    "resend": "anymail.webhooks.resend.ResendTrackingWebhookView",
    "sendgrid": "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
    "sendinblue": "anymail.webhooks.sendinblue.SendinBlueTrackingWebhookView",
    "sparkpost": "anymail.webhooks.sparkpost.SparkPostTrackingWebhookView",
    "unisender_go": "anymail.webhooks.unisender_go.UnisenderGoTrackingWebhookView",
}

_ANYMAIL_BACKEND = re.compile(r"^anymail\.backends\.(?P<name>\w+)\.EmailBackend$")


def anymail_provider() -> str | None:
    """Return the anymail provider EMAIL_BACKEND names ("postmark"), or None."""
    match = _ANYMAIL_BACKEND.match(getattr(settings, "EMAIL_BACKEND", "") or "")
    return match["name"] if match else None


def tracking_webhook_path() -> str | None:
    """Return the path of the provider's tracking webhook, or None without one."""
    provider = anymail_provider()
    if provider not in TRACKING_VIEWS:
        return None
    return f"/email/events/{provider}/tracking/"


def tracking_webhook_view() -> type[View] | None:
    """Return anymail's tracking view class for the provider, or None without one."""
    provider = anymail_provider()
    if provider not in TRACKING_VIEWS:
        return None
    return import_string(TRACKING_VIEWS[provider])


def webhook_secret() -> list[str]:
    """Return the basic-auth credentials (user:password) the webhook requires."""
    secret = get_anymail_setting("webhook_secret", default=[])
    if isinstance(secret, str):
        secret = [secret] if secret else []
    return [value for value in secret if value]
