import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create an admin user if there is none and print its login. The password "
        "comes from QUIRE_ADMIN_PASSWORD or is generated (and kept in "
        "var/admin-password so that the next start can print it again)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")

    def handle(self, *args, username: str, email: str, **options):
        User = get_user_model()
        saved = settings.VAR_DIR / "admin-password"
        admin = User.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None:
            password = os.environ.get("QUIRE_ADMIN_PASSWORD")
            if not password:
                password = secrets.token_urlsafe(12)
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(password)
                saved.chmod(0o600)
            User.objects.create_superuser(
                username=username, email=email, password=password
            )
            self._print(username, password)
            return
        for candidate in (
            os.environ.get("QUIRE_ADMIN_PASSWORD"),
            saved.read_text() if saved.exists() else None,
        ):
            if candidate and admin.check_password(candidate):
                self._print(admin.get_username(), candidate)
                return
        self.stdout.write(
            f"Admin login: username {admin.get_username()} (password changed since; "
            f"reset it with `.venv/bin/python manage.py changepassword "
            f"{admin.get_username()}`)"
        )

    def _print(self, username: str, password: str) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"Admin login: username {username}  password {password}")
        )
