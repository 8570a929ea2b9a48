"""Subscriber import (Substack, Ghost, Mailchimp, plain CSV) and export."""

from .formats import FORMATS, ImportFailed
from .run import ImportReport, import_subscribers

__all__ = ["FORMATS", "ImportFailed", "ImportReport", "import_subscribers"]
