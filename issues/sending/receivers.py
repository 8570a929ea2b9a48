"""Sending's part when the subscribers app erases a subscriber.

Connected in SendingConfig.ready() to subscribers.signals.subscriber_erasing.
"""

from .services import forget_recipients


def forget_erased_recipients(sender, *, subscribers, email: str, **kwargs) -> None:
    """Erase the address from the send history; the send's counts stay."""
    forget_recipients(subscribers=subscribers, email=email)
