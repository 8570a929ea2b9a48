"""Signal receivers of analytics, connected in AnalyticsConfig.ready()."""

from .hits import record_unsubscribe


def count_unsubscribe(sender, *, subscriber_id: int, issue_id: int, **kwargs) -> None:
    """Count an unsubscribe against the issue whose email it came from."""
    record_unsubscribe(subscriber_id=subscriber_id, issue_id=issue_id)
