"""Every admin page wears django-unfold's theme, with nothing that needs inline code."""

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import RequestFactory
from unfold.admin import ModelAdmin as ThemedModelAdmin

from newsletter.adminsite import PermissionCheckedActionsMixin

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent


def test_every_model_admin_wears_the_theme_and_checks_its_actions():
    admins = admin.site._registry.values()
    assert len(admins) > 10
    for model_admin in admins:
        assert isinstance(model_admin, ThemedModelAdmin), model_admin
        assert isinstance(model_admin, PermissionCheckedActionsMixin), model_admin


def test_the_colour_stylesheet_holds_unfold_s_colours():
    """unfold writes its colours as an inline <style>; Quire serves them as a file."""
    request = RequestFactory().get("/admin/")
    colours = admin.site._get_colors("COLORS", request)
    sheet = (ROOT / "static/css/admin-theme.css").read_text()
    written = dict(re.findall(r"--color-([\w-]+): ([^;]+);", sheet))
    expected = {
        f"{name}-{weight}": value
        for name, weights in colours.items()
        for weight, value in weights.items()
    }
    assert written == expected


def test_admin_pages_load_alpine_s_csp_build_and_no_inline_colours(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "/static/vendor/alpine-csp/alpine-csp.min.js" in page
    assert "unfold/js/alpine/alpine.js" not in page
    assert 'id="unfold-theme-colors"' not in page
    assert "/static/css/admin-theme.css" in page
