"""Every write of two-factor authentication: enrol, confirm, recovery codes, remove."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django_otp import devices_for_user, user_has_device, verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

APP_DEVICE_NAME = "Authenticator app"
CODES_DEVICE_NAME = "Recovery codes"
RECOVERY_CODES = 10


def is_required(user) -> bool:
    """Return whether this staff member must use two-factor authentication."""
    return bool(user.is_superuser and settings.QUIRE_REQUIRE_2FA_FOR_SUPERUSERS)


def is_enrolled(user) -> bool:
    """Return whether the user has a confirmed authenticator app or recovery codes."""
    return user_has_device(user, confirmed=True)


def pending_step(request) -> str | None:
    """Return the two-factor page this admin session must pass first, or None.

    "verify" for anyone enrolled whose session has not passed a code yet, "setup"
    for someone who must enrol and has not.
    """
    user = request.user
    if not user.is_authenticated or user.is_verified():
        return None
    if is_enrolled(user):
        return "verify"
    if is_required(user):
        return "setup"
    return None


@transaction.atomic
def start_enrolment(*, user) -> TOTPDevice:
    """Return the user's unconfirmed authenticator app, creating it if needed."""
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(user=user, confirmed=False)
        .order_by("pk")
        .first()
    )
    if device is None:
        device = TOTPDevice.objects.create(
            user=user, name=APP_DEVICE_NAME, confirmed=False
        )
    return device


@transaction.atomic
def confirm_enrolment(*, user, token: str) -> tuple[TOTPDevice, list[str]] | None:
    """Confirm the pending authenticator app with a code from it.

    Returns the device and a new set of recovery codes (replacing any earlier app
    and codes), or None when the code is wrong.
    """
    device = (
        TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    )
    if device is None or not verify_token(user, device.persistent_id, token):
        return None
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return device, new_recovery_codes(user=user)


@transaction.atomic
def new_recovery_codes(*, user) -> list[str]:
    """Replace the user's recovery codes with new ones; return them (shown once)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=CODES_DEVICE_NAME)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=code) for code in codes]
    )
    return codes


def check_code(*, user, token: str):
    """Return the device that accepts this code (app code or recovery code), or None.

    A recovery code is used up; each device slows down after wrong codes.
    """
    token = "".join(token.split()).lower()
    for device in list(devices_for_user(user, confirmed=True)):
        if verify_token(user, device.persistent_id, token):
            return device
    return None


def remaining_recovery_codes(user) -> int:
    """Return how many unused recovery codes the user has."""
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


@transaction.atomic
def remove_two_factor(*, user) -> None:
    """Remove the user's authenticator app and recovery codes."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
