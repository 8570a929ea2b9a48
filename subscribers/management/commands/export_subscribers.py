from pathlib import Path

from django.core.management.base import BaseCommand

from subscribers.exporting import iter_export_lines
from subscribers.models import Subscriber


class Command(BaseCommand):
    help = "Export subscribers as CSV (status, dates and consent) to stdout or a file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", type=Path, help="write to this file")
        parser.add_argument(
            "--status", choices=Subscriber.Status.values, action="append",
            help="only these statuses (repeatable)",
        )  # fmt: skip

    def handle(self, *args, output: Path | None, status: list | None, **options):
        queryset = Subscriber.objects.all()
        if status:
            queryset = queryset.filter(status__in=status)
        if output is None:
            for line in iter_export_lines(queryset):
                self.stdout.write(line, ending="")
            return
        with output.open("w", encoding="utf-8", newline="") as out:
            for line in iter_export_lines(queryset):
                out.write(line)
        self.stderr.write(f"Wrote {output}")
