"""Quire's admin site, the default ``admin.site`` (see apps.QuireAdminConfig).

Two rules hold on every admin page, Quire's and those of the apps it uses alike:

- An action runs only for someone allowed to run it. Actions declare the permission
  they need (``@admin.action(permissions=["change"])``); Django then leaves them out
  of the list, and a request that names one anyway is answered 403 here instead of
  being quietly ignored.
- Staff who must use two-factor authentication (see newsletter/twofactor/) reach no
  admin page until this session has passed it.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_GET
from unfold.admin import ModelAdmin as ThemedModelAdmin
from unfold.sites import UnfoldAdminSite

from .twofactor import views as twofactor
from .twofactor.services import pending_step


class PermissionCheckedActionsMixin:
    """Answer 403 to an admin action the user may not run.

    An action that declares no permission needs the change permission: only one
    that says so (``permissions=["view"]``, e.g. an export) is open to viewers.
    """

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            return actions
        return {
            name: action
            for name, action in actions.items()
            if getattr(action[0], "allowed_permissions", None)
        }

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST":
            self.check_action_permission(request)
        return super().changelist_view(request, extra_context)

    def check_action_permission(self, request) -> None:
        """Raise PermissionDenied if the posted action is not one the user may run."""
        names = request.POST.getlist("action")
        try:
            name = names[int(request.POST.get("index", 0))]
        except (IndexError, ValueError):
            name = names[0] if names else ""
        # An empty choice is the list-editable form's Save, not an action.
        if name and name not in self.get_actions(request):
            raise PermissionDenied


class QuireAdminSite(UnfoldAdminSite):
    """The admin site: django-unfold's theme, Quire's rules and its dashboard."""

    index_title = "Dashboard"

    def register(self, model_or_iterable, admin_class=None, **options):
        # Every model admin, Quire's and third-party apps' alike, refuses actions
        # its user may not run, and wears the admin's theme (unfold's widgets and
        # list markup); doing it here means none can be left out.
        admin_class = admin_class or admin.ModelAdmin
        bases: tuple[type, ...] = (admin_class,)
        if not issubclass(admin_class, ThemedModelAdmin):
            bases = (*bases, ThemedModelAdmin)
        if not issubclass(admin_class, PermissionCheckedActionsMixin):
            bases = (PermissionCheckedActionsMixin, *bases)
        if len(bases) > 1:
            admin_class = type(
                admin_class.__name__, bases, {"__module__": admin_class.__module__}
            )
        return super().register(model_or_iterable, admin_class, **options)

    @method_decorator(require_GET)
    def search(self, request, extra_context=None):
        # unfold's command search only reads: a POST is refused (405).
        return super().search(request, extra_context)

    def admin_view(self, view, cacheable=False, *, two_factor_exempt=False):
        # Signing out, and the two-factor pages themselves, stay reachable.
        if not two_factor_exempt and view != self.logout:
            view = _two_factor_required(view)
        return super().admin_view(view, cacheable)

    def get_urls(self):
        def view(func, **kwargs):
            return self.admin_view(
                wraps(func)(lambda request: func(request, site=self)), **kwargs
            )

        urls = [
            path("two-factor/", view(twofactor.status_view), name="two_factor"),
            path(
                "two-factor/setup/",
                view(twofactor.setup_view, two_factor_exempt=True),
                name="two_factor_setup",
            ),
            path(
                "two-factor/verify/",
                view(twofactor.verify_view, two_factor_exempt=True),
                name="two_factor_verify",
            ),
            path(
                "two-factor/recovery-codes/",
                view(twofactor.recovery_codes_view),
                name="two_factor_codes",
            ),
            path(
                "two-factor/turn-off/",
                view(twofactor.turn_off_view),
                name="two_factor_off",
            ),
        ]
        return urls + super().get_urls()


def admin_pages_stylesheet(request) -> str:
    """Return the stylesheet every admin page adds to the theme's (UNFOLD STYLES)."""
    return static("css/admin-pages.css")


def two_factor_link(request) -> str:
    """Return the address of the two-factor page (an account link in UNFOLD)."""
    return reverse("admin:two_factor")


def _two_factor_required(view):
    @wraps(view)
    def inner(request, *args, **kwargs):
        step = pending_step(request)
        if step is not None:
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse(f'admin:two_factor_{step}')}?{query}")
        return view(request, *args, **kwargs)

    return inner
