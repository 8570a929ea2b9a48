"""Render the stored HTML of every issue and paper again."""

from django.core.management.base import BaseCommand

from issues.services import rerender_stored_html


class Command(BaseCommand):
    help = (
        "Render every issue body and paper summary again with the current "
        "renderer. Run it once after upgrading Quire: pages are rendered when "
        "saved, so older issues keep the rendering of the day they were saved."
    )

    def handle(self, *args, **options):
        changed = rerender_stored_html()
        self.stdout.write(self.style.SUCCESS(f"Rendered again: {changed} changed."))
