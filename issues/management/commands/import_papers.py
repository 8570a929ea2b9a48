from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from issues.paper_import import FORMATS, MAX_FILE_BYTES, ImportFailed, import_papers


class Command(BaseCommand):
    help = (
        "Import papers from a BibTeX, RIS or CSL-JSON file (Zotero, JabRef, "
        "Mendeley exports). Papers already here (same arXiv id or DOI) are kept; "
        "refused entries are listed by line, and the rest imports."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="the .bib, .ris or .json file")
        parser.add_argument(
            "--format", choices=list(FORMATS), default="auto",
            help="the file's format (default: guess from its name and contents)",
        )  # fmt: skip
        parser.add_argument(
            "--keep-matched", action="store_true",
            help="leave papers already here untouched (default: fill in their "
            "empty fields from the file; nothing is overwritten)",
        )  # fmt: skip

    def handle(
        self, *args, file: Path, format: str, keep_matched: bool, **options
    ) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        with file.open("rb") as stream:
            # One byte past the limit is enough to refuse it, without reading all.
            data = stream.read(MAX_FILE_BYTES + 1)
        try:
            report = import_papers(
                data=data, format=format, filename=file.name,
                fill_empty=not keep_matched,
            )  # fmt: skip
        except ImportFailed as exc:
            raise CommandError(f"{file}: {exc} Nothing was imported.") from None
        self.stdout.write(report.summary())
