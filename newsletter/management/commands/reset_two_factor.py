from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from newsletter.twofactor.services import remove_two_factor


class Command(BaseCommand):
    help = (
        "Remove a staff member's authenticator app and recovery codes (a lost phone). "
        "They sign in with their password alone until they set it up again (a "
        "superuser who must use it is asked to at once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is called {username!r}.")
        remove_two_factor(user=user)
        self.stdout.write(f"Two-factor authentication removed for {username}.")
