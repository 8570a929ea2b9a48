"""recompute the dashboard's daily figures from the first subscriber on"""

from django.core.management.base import BaseCommand

from issues.dashboard import rollup


class Command(BaseCommand):
    help = "Recompute every day's growth and revenue figures (e.g. after an import)."

    def handle(self, *args, **options) -> None:
        days = rollup.rebuild_figures()
        self.stdout.write(f"{days} days of figures written.")
