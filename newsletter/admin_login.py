"""The first-run admin login that `make run` prints (ensure_admin and runall)."""

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model


@dataclass(frozen=True)
class AdminLogin:
    username: str
    # None once the admin changed the password Quire printed.
    password: str | None

    def __str__(self) -> str:
        if self.password:
            return f"Admin login: username {self.username}  password {self.password}"
        return (
            f"Admin login: username {self.username} (password changed since; "
            f"reset it with `.venv/bin/python manage.py changepassword "
            f"{self.username}`)"
        )


def saved_password_path() -> Path:
    """Return where a generated admin password is kept for the next start."""
    return settings.VAR_DIR / "admin-password"


def find_admin_login() -> AdminLogin | None:
    """Return the first superuser's login, or None when there is no superuser.

    The password is given only while it is still QUIRE_ADMIN_PASSWORD or the one
    generated on the first run.
    """
    admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    if admin is None:
        return None
    saved = saved_password_path()
    for candidate in (
        os.environ.get("QUIRE_ADMIN_PASSWORD"),
        saved.read_text() if saved.exists() else None,
    ):
        if candidate and admin.check_password(candidate):
            return AdminLogin(admin.get_username(), candidate)
    return AdminLogin(admin.get_username(), None)
