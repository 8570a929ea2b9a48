"""Paper import from BibTeX, RIS and CSL-JSON (Zotero's exports), reported by line."""

from .formats import FORMATS, ImportFailed
from .run import MAX_FILE_BYTES, PaperImportReport, import_papers

__all__ = [
    "FORMATS",
    "MAX_FILE_BYTES",
    "ImportFailed",
    "PaperImportReport",
    "import_papers",
]
