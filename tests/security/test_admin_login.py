"""Admin sign-in: a lockout after failed passwords, and two-factor for staff.

Codes are computed here from the key the setup page shows (RFC 6238), as an
authenticator app would.
"""

import base64
import hashlib
import hmac
import os
import re
import struct
import subprocess
import sys
import time

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from newsletter.twofactor import services as twofactor
from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-pass!"
LOGIN = reverse("admin:login")
SETUP = reverse("admin:two_factor_setup")
VERIFY = reverse("admin:two_factor_verify")


def totp(key_b32: str, *, at: float | None = None) -> str:
    """Return the 6-digit RFC 6238 code for this base32 key (30 s steps, SHA-1)."""
    key = base64.b32decode(key_b32)
    counter = int((time.time() if at is None else at) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def wrong_code(key_b32: str) -> str:
    now = time.time()
    valid = {totp(key_b32, at=now + drift) for drift in (-60, -30, 0, 30, 60)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        "author", "author@example.org", PASSWORD
    )


@pytest.fixture
def required(settings):
    settings.QUIRE_REQUIRE_2FA_FOR_SUPERUSERS = True
    return settings


def sign_in(client, *, password=PASSWORD, ip="203.0.113.5", **headers):
    return client.post(
        LOGIN,
        {"username": "author", "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
        **headers,
    )


def signed_in(client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


def enrol(user) -> tuple[str, list[str]]:
    """Give the user a confirmed app and recovery codes; return the key and codes."""
    device = twofactor.start_enrolment(user=user)
    key = base64.b32encode(device.bin_key).decode()
    # The code that confirms it is spent; sign-ins use the next ones.
    _, codes = twofactor.confirm_enrolment(
        user=user, token=totp(key, at=time.time() - 30)
    )
    return key, codes


# --- lockout -------------------------------------------------------------------


def test_the_sixth_sign_in_after_five_failures_is_refused_even_with_the_password(
    client, superuser
):
    failures = [sign_in(client, password="guess").status_code for _ in range(5)]
    # Four are told the password is wrong; the fifth failure starts the lockout.
    assert failures == [200, 200, 200, 200, 429]
    locked = sign_in(client)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert not signed_in(client)


def test_a_locked_out_address_does_not_lock_out_the_same_user_elsewhere(superuser):
    attacker = Client()
    for _ in range(6):
        sign_in(attacker, password="guess", ip="203.0.113.5")
    author = Client()
    assert sign_in(author, ip="198.51.100.20").status_code == 302
    assert signed_in(author)


def test_forged_forwarded_headers_do_not_escape_the_lockout(client, superuser):
    for n in range(5):
        sign_in(client, password="guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    locked = sign_in(client, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert locked.status_code == 429
    assert not signed_in(client)


def test_behind_a_trusted_proxy_the_lockout_counts_the_client_address(
    settings, superuser
):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    attacker = Client()
    for _ in range(5):
        sign_in(
            attacker, password="guess", ip="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.9"
        )
    assert (
        sign_in(attacker, ip="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.9").status_code
        == 429
    )
    author = Client()
    response = sign_in(author, ip="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert response.status_code == 302
    assert signed_in(author)


# --- two-factor: enrolment -----------------------------------------------------


def admin_pages() -> list[str]:
    issue = IssueFactory()
    pages = [reverse("admin:index"), reverse("admin:password_change")]
    for model in apps.get_models():
        if admin.site.is_registered(model):
            opts = model._meta
            pages.append(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            )
            pages.append(reverse("admin:app_list", args=[opts.app_label]))
    for name in ("sending_test", "sending_preview", "sending_publish"):
        pages.append(reverse(f"admin:{name}", args=[issue.pk]))
    pages.append(reverse("admin:two_factor"))
    return pages


def test_a_superuser_without_a_device_is_sent_to_enrolment_from_every_admin_page(
    client, superuser, required
):
    client.force_login(superuser)
    pages = admin_pages()
    assert len(pages) > 20
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(f"{SETUP}?next="), page
    # Nor can an action be posted around it.
    response = client.post(
        reverse("admin:subscribers_subscriber_changelist"),
        {"action": "unsubscribe", "_selected_action": ["1"], "index": "0"},
    )
    assert response["Location"].startswith(f"{SETUP}?next=")


def test_enrolment_shows_a_qr_code_and_key_and_a_code_from_the_app_turns_it_on(
    client, superuser, required
):
    client.force_login(superuser)
    page = client.get(f"{SETUP}?next=/admin/subscribers/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<svg role="img" aria-label="QR code for your authenticator app"' in html
    key = re.search(r"<code[^>]*data-key>([A-Z2-7]+)</code>", html).group(1)

    done = client.post(SETUP, {"code": totp(key), "next": "/admin/subscribers/"})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", done.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert signed_in(client)
    # Shown once: the settings page never lists them again.
    status = client.get(reverse("admin:two_factor")).content.decode()
    assert "10 unused recovery codes" in status
    assert not any(code in status for code in codes)


def test_a_wrong_code_does_not_turn_two_factor_on(client, superuser, required):
    client.force_login(superuser)
    html = client.get(SETUP).content.decode()
    key = re.search(r"<code[^>]*data-key>([A-Z2-7]+)</code>", html).group(1)
    wrong = client.post(SETUP, {"code": wrong_code(key), "next": "/admin/"})
    assert wrong.status_code == 200
    assert "That code is not the one the app shows now" in wrong.content.decode()
    assert not twofactor.is_enrolled(superuser)
    assert client.get("/admin/")["Location"].startswith(f"{SETUP}?next=")


def test_the_embedded_default_asks_no_superuser_for_two_factor(client, superuser):
    # The login `make run` prints opens the admin at once.
    assert django_settings.QUIRE_REQUIRE_2FA_FOR_SUPERUSERS is False
    assert sign_in(client).status_code == 302
    assert signed_in(client)


def _setting_in_production(**env) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    environ.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": "k3y-" + "a8Zq" * 16,
            "ALLOWED_HOSTS": "news.example.org",
            **env,
        }
    )
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; "
            "print(settings.QUIRE_REQUIRE_2FA_FOR_SUPERUSERS)",
        ],
        cwd=django_settings.BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_production_requires_two_factor_of_superusers_unless_turned_off():
    assert _setting_in_production() == "True"
    assert _setting_in_production(QUIRE_REQUIRE_2FA_FOR_SUPERUSERS="false") == "False"


def test_staff_who_need_not_and_did_not_enrol_sign_in_with_a_password(client, required):
    get_user_model().objects.create_user(
        "author", "editor@example.org", PASSWORD, is_staff=True
    )
    assert sign_in(client).status_code == 302
    assert signed_in(client)


# --- two-factor: signing in ----------------------------------------------------


def test_with_a_device_a_valid_code_lets_the_superuser_in(client, superuser, required):
    key, _ = enrol(superuser)
    assert sign_in(client).status_code == 302
    response = client.get("/admin/subscribers/subscriber/")
    assert response["Location"] == (
        f"{VERIFY}?next=%2Fadmin%2Fsubscribers%2Fsubscriber%2F"
    )
    answer = client.post(
        VERIFY, {"code": totp(key), "next": "/admin/subscribers/subscriber/"}
    )
    assert answer.status_code == 302
    assert answer["Location"] == "/admin/subscribers/subscriber/"
    assert signed_in(client)


def test_with_a_device_a_wrong_code_does_not(client, superuser, required):
    key, _ = enrol(superuser)
    sign_in(client)
    answer = client.post(VERIFY, {"code": wrong_code(key), "next": "/admin/"})
    assert answer.status_code == 200
    assert "That code is not right" in answer.content.decode()
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302


def test_an_enrolled_staff_member_is_asked_for_a_code_even_when_not_required(
    client, superuser
):
    enrol(superuser)
    sign_in(client)
    assert client.get("/admin/")["Location"].startswith(f"{VERIFY}?next=")


def test_a_recovery_code_works_once(client, superuser, required):
    _, codes = enrol(superuser)
    sign_in(client)
    assert client.post(VERIFY, {"code": codes[0], "next": "/admin/"}).status_code == 302
    assert signed_in(client)

    again = Client()
    sign_in(again)
    refused = again.post(VERIFY, {"code": codes[0], "next": "/admin/"})
    assert refused.status_code == 200
    assert not signed_in(again)
    assert twofactor.remaining_recovery_codes(superuser) == 9


def test_a_password_alone_cannot_enrol_a_new_device(client, superuser, required):
    key, _ = enrol(superuser)
    sign_in(client)
    assert client.get(SETUP)["Location"].startswith(VERIFY)
    # An attacker who knows the password posts a code of a device of their own.
    from django_otp.plugins.otp_totp.models import TOTPDevice

    theirs = TOTPDevice.objects.create(user=superuser, name="theirs", confirmed=False)
    own_key = base64.b32encode(theirs.bin_key).decode()
    client.post(SETUP, {"code": totp(own_key), "next": "/admin/"})
    assert not signed_in(client)
    confirmed = TOTPDevice.objects.filter(user=superuser, confirmed=True)
    assert [device.name for device in confirmed] == ["Authenticator app"]


def test_verify_sends_back_only_to_this_site(client, superuser, required):
    key, _ = enrol(superuser)
    sign_in(client)
    answer = client.post(VERIFY, {"code": totp(key), "next": "https://evil.example/"})
    assert answer["Location"] == reverse("admin:index")


def test_superusers_cannot_turn_two_factor_off_when_it_is_required(
    client, superuser, required
):
    key, _ = enrol(superuser)
    sign_in(client)
    client.post(VERIFY, {"code": totp(key), "next": "/admin/"})
    assert client.post(reverse("admin:two_factor_off")).status_code == 403
    assert twofactor.is_enrolled(superuser)


def test_reset_two_factor_removes_a_lost_device(superuser, required):
    from django.core.management import call_command

    enrol(superuser)
    call_command("reset_two_factor", "author")
    assert not twofactor.is_enrolled(superuser)
