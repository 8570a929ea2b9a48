"""Load demo content: a monthly machine-learning research newsletter."""

from django.core.management.base import BaseCommand
from django.db import transaction

from issues.demo import load_demo
from issues.models import Issue


class Command(BaseCommand):
    help = (
        "Load demo issues, papers and tags written for Quire. Running it again "
        "updates the demo content in place."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when any issue exists already (used by make run).",
        )

    def handle(self, *args, if_empty: bool = False, **options):
        if if_empty and Issue.objects.exists():
            self.stdout.write("Issues exist already; demo content not loaded.")
            return
        with transaction.atomic():
            counts = load_demo()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo content loaded: {counts['issues']} issues, "
                f"{counts['papers']} papers, {counts['tags']} tags."
            )
        )
