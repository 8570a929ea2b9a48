"""The admin's two-factor pages: status, set up, verify, recovery codes, turn off.

Mounted by the admin site (newsletter/adminsite.py) under /admin/two-factor/. Set up
and verify are reachable before this session has passed two-factor; the others only
after (the site sends anyone who must pass it to verify or set up first).
"""

from __future__ import annotations

from base64 import b32encode

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp import login as otp_login

from . import services
from .forms import AppCodeForm, CodeForm


def _next_url(request, site) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target,
        allowed_hosts={request.get_host()},
        require_https=request.is_secure(),
    ):
        return target
    return reverse(f"{site.name}:index")


def _page(request, site, template: str, title: str, **context):
    return TemplateResponse(
        request,
        f"admin/two_factor/{template}.html",
        {
            **site.each_context(request),
            # The sidebar lists pages a session that has not passed two-factor
            # cannot open yet.
            "is_nav_sidebar_enabled": False,
            "title": title,
            "next": _next_url(request, site),
            **context,
        },
    )


def _qr_svg(url: str) -> str:
    image = qrcode.make(
        url, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=8
    )
    svg = image.to_string(encoding="unicode")
    # A picture with a name for screen readers; the key is also printed as text.
    return mark_safe(  # noqa: S308 - qrcode's own SVG, with no user text in it
        svg.replace(
            "<svg ",
            '<svg role="img" aria-label="QR code for your authenticator app" ',
            1,
        )
    )


def status_view(request, *, site):
    """Show whether two-factor is on for the signed-in staff member."""
    user = request.user
    return _page(
        request,
        site,
        "status",
        "Two-factor authentication",
        enrolled=services.is_enrolled(user),
        required=services.is_required(user),
        codes_left=services.remaining_recovery_codes(user),
    )


def setup_view(request, *, site):
    """Show the QR code and key of a new authenticator app; POST confirms it."""
    user = request.user
    # Someone who enrolled already proves it before adding another app: a password
    # alone must never be enough to replace the second factor.
    if services.is_enrolled(user) and not user.is_verified():
        return redirect(f"{reverse(f'{site.name}:two_factor_verify')}")
    form = AppCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        confirmed = services.confirm_enrolment(
            user=user, token=form.cleaned_data["code"].strip()
        )
        if confirmed is not None:
            device, codes = confirmed
            otp_login(request, device)
            return _page(
                request,
                site,
                "codes",
                "Two-factor authentication is on",
                codes=codes,
                enrolled_now=True,
            )
        form.add_error(
            "code",
            "That code is not the one the app shows now. Check that the phone's "
            "clock is right, wait a few seconds and try the newest code.",
        )
    device = services.start_enrolment(user=user)
    return _page(
        request,
        site,
        "setup",
        "Set up two-factor authentication",
        form=form,
        qr_svg=_qr_svg(device.config_url),
        key=b32encode(device.bin_key).decode(),
        required=services.is_required(user),
    )


def verify_view(request, *, site):
    """Ask for a code from the app or a recovery code; POST checks it."""
    user = request.user
    if user.is_verified() or not services.is_enrolled(user):
        return redirect(_next_url(request, site))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = services.check_code(user=user, token=form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            left = services.remaining_recovery_codes(user)
            if device.name == services.CODES_DEVICE_NAME:
                messages.warning(
                    request,
                    f"You used a recovery code; {left} left. Make new ones under "
                    "Two-factor authentication.",
                )
            return redirect(_next_url(request, site))
        form.add_error(
            "code",
            "That code is not right. Use the newest code from the app, or an unused "
            "recovery code; after several wrong codes, wait a little between tries.",
        )
    return _page(request, site, "verify", "Two-factor authentication", form=form)


def recovery_codes_view(request, *, site):
    """POST: replace the recovery codes and show the new ones once."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not services.is_enrolled(request.user):
        raise PermissionDenied
    codes = services.new_recovery_codes(user=request.user)
    return _page(
        request, site, "codes", "New recovery codes", codes=codes, enrolled_now=False
    )


def turn_off_view(request, *, site):
    """POST: remove the app and recovery codes, unless two-factor is required."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if services.is_required(request.user):
        raise PermissionDenied
    services.remove_two_factor(user=request.user)
    messages.success(request, "Two-factor authentication is off for your account.")
    return redirect(reverse(f"{site.name}:two_factor"))
