"""The beat task that keeps the daily figures current."""

from celery import shared_task

from . import rollup


@shared_task
def refresh_daily_figures() -> int:
    """Recompute today's and yesterday's figures (and any day missing)."""
    return rollup.refresh_figures()
