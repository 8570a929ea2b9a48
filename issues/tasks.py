"""Thin Celery tasks of the issues app: beat's arXiv version check."""

from __future__ import annotations

from celery import shared_task

from . import paper_versions


@shared_task(ignore_result=True)
def check_arxiv_versions() -> dict:
    """Check arXiv's latest version of the papers due (beat, hourly by default)."""
    result = paper_versions.check_arxiv_versions()
    return {"checked": result.checked, "newer": result.newer, "error": result.error}
