from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from newsletter.models import Newsletter
from subscribers.importing import FORMATS, ImportFailed, import_subscribers


class Command(BaseCommand):
    help = (
        "Import subscribers from a CSV export (Substack, Ghost, Mailchimp or a "
        "plain email[,name][,labels] list). Invalid rows are listed; the rest "
        "imports."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="the CSV file")
        parser.add_argument(
            "--format", choices=list(FORMATS), default="auto",
            help="the export's origin (default: detect from the header)",
        )  # fmt: skip
        parser.add_argument(
            "--newsletter", action="append", dest="newsletters", metavar="SLUG",
            help="put everyone in the file in this newsletter (repeat for more); "
            "default: new subscribers join the newsletters marked 'join by "
            "default', those already here keep theirs",
        )  # fmt: skip
        parser.add_argument(
            "--no-newsletters", action="store_true",
            help="put nobody in any newsletter",
        )  # fmt: skip
        parser.add_argument(
            "--label", action="append", dest="labels", default=[], metavar="NAME",
            help="give everyone in the file this label, new or existing (repeat "
            "for more); a labels column gives each row its own as well",
        )  # fmt: skip

    def handle(
        self,
        *args,
        file: Path,
        format: str,
        newsletters: list[str] | None,
        no_newsletters: bool,
        labels: list[str],
        **options,
    ) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        chosen: list[int] | None = None
        if no_newsletters:
            chosen = []
        elif newsletters:
            found = dict(
                Newsletter.objects.filter(slug__in=newsletters).values_list(
                    "slug", "pk"
                )
            )
            unknown = [slug for slug in newsletters if slug not in found]
            if unknown:
                raise CommandError(
                    f"No newsletter {', '.join(unknown)}; there are: "
                    + ", ".join(Newsletter.objects.values_list("slug", flat=True))
                )
            chosen = list(found.values())
        try:
            with file.open(encoding="utf-8-sig", newline="") as stream:
                report = import_subscribers(
                    stream=stream,
                    format=format,
                    filename=file.name,
                    newsletters=chosen,
                    labels=labels,
                )
        except ImportFailed as exc:
            raise CommandError(f"{file}: {exc} Nothing was imported.") from None
        self.stdout.write(report.summary())
