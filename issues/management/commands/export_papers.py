from django.core.management.base import BaseCommand

from issues.models import Paper
from issues.paper_export import EXPORT_FORMATS, iter_export


class Command(BaseCommand):
    help = (
        "Export papers as BibTeX or CSL-JSON (every paper, or one year's) to "
        "standard output or a file; import_papers reads either back."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", choices=list(EXPORT_FORMATS), default="bibtex")
        parser.add_argument("--year", type=int, help="only the papers of this year")
        parser.add_argument(
            "--output", "-o", help="write to this file (default: standard output)"
        )

    def handle(
        self, *args, format: str, year: int | None, output: str | None, **options
    ) -> None:
        papers = Paper.objects.all()
        if year is not None:
            papers = papers.filter(year=year)
        chunks = iter_export(papers, format)
        if output:
            with open(output, "w", encoding="utf-8") as stream:
                stream.writelines(chunks)
            return
        for chunk in chunks:
            self.stdout.write(chunk, ending="")
