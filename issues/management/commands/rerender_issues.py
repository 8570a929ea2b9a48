from django.core.management.base import BaseCommand, CommandError

from issues import services


class Command(BaseCommand):
    help = (
        "Render every issue and paper summary again from its Markdown and store the "
        "HTML that changed (after an upgrade: older versions stored links with the "
        "site's address in them)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=200,
            help="rows read and written at once (default 200)",
        )

    def handle(self, *args, chunk_size: int, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1.")
        done = services.rerender_stored_html(chunk_size=chunk_size)
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-rendered {done.issues} issues ({done.issues_changed} changed) "
                f"and {done.papers} paper summaries ({done.papers_changed} changed)."
            )
        )
