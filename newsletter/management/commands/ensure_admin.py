from django.core.management.base import BaseCommand

from newsletter.services import ensure_admin_user


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
        login = ensure_admin_user(username=username, email=email)
        if login.password:
            self.stdout.write(self.style.SUCCESS(str(login)))
        else:
            self.stdout.write(str(login))
