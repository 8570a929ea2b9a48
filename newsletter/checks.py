"""System checks: a production Quire refuses to start with an open door.

Run by ``manage.py check``, ``runserver`` and ``migrate`` (which the compose stack
runs before gunicorn), so a misconfigured deployment stops before serving.
"""

import warnings

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .email_provider import (
    anymail_provider,
    tracking_webhook_path,
    tracking_webhook_view,
    webhook_secret,
)


@register(Tags.security)
def check_email_webhook(app_configs=None, **kwargs) -> list:
    """Require ANYMAIL_WEBHOOK_SECRET (and the provider's keys) for its webhook."""
    view_class = tracking_webhook_view()
    if view_class is None:
        return []
    provider = anymail_provider()
    path = tracking_webhook_path()
    level = Warning if settings.DEBUG else Error
    messages = []
    if not webhook_secret():
        messages.append(
            level(
                "Set the environment variable ANYMAIL_WEBHOOK_SECRET to user:password "
                f"(a long random password): {provider}'s tracking webhook at {path} "
                "is off without it, so bounces and complaints are not recorded.",
                hint=f"Give {provider} the webhook address "
                f"https://user:password@<your site>{path}.",
                id="quire.W001" if settings.DEBUG else "quire.E001",
            )
        )
    try:
        # The view reads its settings (signing keys) when it is made; anymail's
        # message names the missing variable. Its warning about a missing secret
        # is the message above.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            view_class()
    except ImproperlyConfigured as exc:
        messages.append(
            level(
                f"{provider}'s tracking webhook at {path} cannot check signatures: "
                f"{exc}",
                id="quire.W002" if settings.DEBUG else "quire.E002",
            )
        )
    return messages
