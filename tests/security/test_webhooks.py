"""Forged provider events at /email/events/: nothing is suppressed without the secret.

The attacker is anyone on the internet: they post a spam complaint about a
subscriber's address to every tracking (and inbound) path django-anymail knows,
without credentials, with wrong ones and, for providers Quire does not use, with the
right ones.
"""

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import anymail.urls
import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.core.checks import Error, Warning, run_checks

from issues.sending.models import EmailEvent
from subscribers.models import Subscriber, Suppression
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

FORGED = json.loads(
    (
        Path(__file__).resolve().parent.parent
        / "fixtures"
        / "webhooks"
        / "forged-complaints.json"
    ).read_text()
)
SECRET = "hook:s3cret-long-enough"


def _paths() -> list[str]:
    """Every path anymail's own urls.py mounts, e.g. "postmark/tracking/"."""
    paths = []
    for pattern in anymail.urls.urlpatterns:
        text = str(pattern.pattern)
        if text.startswith("^"):  # mailgun/inbound(_mime)?/
            paths += [
                re.sub(r"\((.*?)\)\?", "", text).strip("^$"),
                re.sub(r"\((.*?)\)\?", r"\1", text).strip("^$"),
            ]
        else:
            paths.append(text)
    return paths


ANYMAIL_PATHS = _paths()


def _auth(credentials: str | None) -> dict:
    if credentials is None:
        return {}
    token = base64.b64encode(credentials.encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def _forge(client, path: str, credentials: str | None):
    provider = path.split("/")[0]
    payload = FORGED.get(provider, FORGED["fallback"])
    # A server error is an answer too: the status code is what is asserted.
    client.raise_request_exception = False
    return client.post(
        f"/email/events/{path}",
        json.dumps(payload),
        content_type="application/json",
        **_auth(credentials),
    )


@pytest.fixture
def victim(db) -> Subscriber:
    return SubscriberFactory(email="victim@example.org", status="active")


def _nothing_changed(victim: Subscriber) -> bool:
    victim.refresh_from_db()
    return (
        victim.status == Subscriber.Status.ACTIVE
        and not Suppression.objects.exists()
        and not EmailEvent.objects.exists()
    )


def _use(settings, backend: str | None, secret: str | None) -> None:
    if backend is not None:
        settings.EMAIL_BACKEND = backend
    settings.ANYMAIL = {"WEBHOOK_SECRET": secret} if secret else {}


@pytest.mark.parametrize("secret", [None, SECRET])
def test_without_a_provider_every_anymail_path_is_not_found(
    client, settings, victim, secret
):
    _use(settings, None, secret)  # the embedded default: the outbox

    for path in ANYMAIL_PATHS:
        for credentials in (None, SECRET):
            response = _forge(client, path, credentials)
            assert response.status_code == 404, (path, credentials)

    assert _nothing_changed(victim)


@pytest.mark.parametrize(
    "provider",
    ["postmark", "sendgrid", "brevo", "resend", "mailjet", "mailtrap", "sparkpost"],
)
def test_only_the_configured_providers_webhook_is_mounted(
    client, settings, victim, provider
):
    _use(settings, f"anymail.backends.{provider}.EmailBackend", SECRET)
    mounted = f"{provider}/tracking/"

    for path in ANYMAIL_PATHS:
        if path == mounted:
            continue
        for credentials in (None, SECRET):
            response = _forge(client, path, credentials)
            assert response.status_code == 404, (path, credentials)
    for credentials in (None, "hook:wrong", "someone:else"):
        response = _forge(client, mounted, credentials)
        # anymail refuses a request that fails its check as a bad request.
        assert response.status_code == 400, credentials

    assert _nothing_changed(victim)


def test_a_provider_configured_without_a_secret_accepts_no_event(
    client, settings, victim
):
    _use(settings, "anymail.backends.postmark.EmailBackend", None)

    for path in ANYMAIL_PATHS:
        for credentials in (None, SECRET):
            response = _forge(client, path, credentials)
            assert response.status_code == 404, (path, credentials)

    assert _nothing_changed(victim)


def test_the_configured_provider_with_its_secret_still_suppresses(
    client, settings, victim
):
    _use(settings, "anymail.backends.postmark.EmailBackend", SECRET)

    response = _forge(client, "postmark/tracking/", SECRET)

    assert response.status_code == 200
    victim.refresh_from_db()
    assert victim.status == Subscriber.Status.COMPLAINED
    assert Suppression.objects.filter(email_hash=victim.email_hash).exists()


def _complaint() -> AnymailTrackingEvent:
    return AnymailTrackingEvent(
        event_type="complained",
        recipient="victim@example.org",
        event_id="forged-signal",
        esp_event={},
    )


def test_a_tracking_signal_from_any_other_view_suppresses_nothing(settings, victim):
    _use(settings, "anymail.backends.postmark.EmailBackend", SECRET)

    # Another provider's view (mounted by some other urlconf) or code that is not
    # a view at all sends anymail's public signal: only the mounted view counts.
    for sender in (SendGridTrackingWebhookView, object):
        tracking.send(sender=sender, event=_complaint(), esp_name="Postmark")

    assert _nothing_changed(victim)


def test_a_tracking_signal_without_a_secret_suppresses_nothing(settings, victim):
    _use(settings, "anymail.backends.postmark.EmailBackend", None)

    tracking.send(
        sender=PostmarkTrackingWebhookView, event=_complaint(), esp_name="Postmark"
    )

    assert _nothing_changed(victim)


def _ids(messages) -> set[str]:
    return {message.id for message in messages}


def test_production_with_a_provider_and_no_secret_fails_the_checks(settings):
    settings.DEBUG = False
    _use(settings, "anymail.backends.postmark.EmailBackend", None)

    errors = [m for m in run_checks() if m.id == "quire.E001"]

    assert len(errors) == 1 and isinstance(errors[0], Error)
    assert "Set the environment variable ANYMAIL_WEBHOOK_SECRET" in errors[0].msg
    assert "/email/events/postmark/tracking/" in errors[0].msg


def test_the_webhook_checks_pass_with_a_secret_or_without_a_provider(settings):
    settings.DEBUG = False
    _use(settings, "anymail.backends.postmark.EmailBackend", SECRET)
    with_secret = _ids(run_checks())
    _use(settings, "django.core.mail.backends.smtp.EmailBackend", None)
    smtp = _ids(run_checks())

    assert "quire.E001" not in with_secret | smtp


def test_debug_with_a_provider_and_no_secret_warns_that_the_webhook_is_off(settings):
    settings.DEBUG = True
    _use(settings, "anymail.backends.postmark.EmailBackend", None)

    (warning,) = [m for m in run_checks() if m.id == "quire.W001"]

    assert isinstance(warning, Warning)
    assert "ANYMAIL_WEBHOOK_SECRET" in warning.msg


def test_a_providers_own_missing_signing_key_fails_the_checks(settings):
    settings.DEBUG = False
    _use(settings, "anymail.backends.mailgun.EmailBackend", SECRET)

    (error,) = [m for m in run_checks() if m.id == "quire.E002"]

    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in error.msg


def _manage(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "EMAIL_BACKEND"} and not key.startswith("ANYMAIL_")
    }
    env.update(
        DEBUG="false",
        SECRET_KEY="k3y-" + "a8Zq" * 16,
        ALLOWED_HOSTS="news.example.org",
        EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
        ANYMAIL_POSTMARK_SERVER_TOKEN="pm-token",
        **env_overrides,
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "command", [("check",), ("runserver", "127.0.0.1:0", "--noreload")]
)
def test_production_refuses_to_start_without_the_webhook_secret(command):
    result = _manage(*command)

    assert result.returncode != 0
    assert "quire.E001" in result.stderr
    assert "Set the environment variable ANYMAIL_WEBHOOK_SECRET" in result.stderr


def test_production_starts_with_the_webhook_secret():
    result = _manage("check", ANYMAIL_WEBHOOK_SECRET=SECRET)

    assert result.returncode == 0, result.stderr
    assert "quire.E001" not in result.stdout + result.stderr
