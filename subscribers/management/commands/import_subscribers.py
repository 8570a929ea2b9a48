from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from subscribers.importing import FORMATS, ImportFailed, import_subscribers


class Command(BaseCommand):
    help = (
        "Import subscribers from a CSV export (Substack, Ghost, Mailchimp or a "
        "plain email[,name] list). Invalid rows are listed; the rest imports."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="the CSV file")
        parser.add_argument(
            "--format", choices=list(FORMATS), default="auto",
            help="the export's origin (default: detect from the header)",
        )  # fmt: skip

    def handle(self, *args, file: Path, format: str, **options) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            with file.open(encoding="utf-8-sig", newline="") as stream:
                report = import_subscribers(
                    stream=stream, format=format, filename=file.name
                )
        except ImportFailed as exc:
            raise CommandError(f"{file}: {exc} Nothing was imported.") from None
        self.stdout.write(report.summary())
