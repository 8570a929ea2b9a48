import pytest

from issues.analytics.buffer import KEY, PROCESSING, RedisBuffer, get_buffer
from issues.analytics.flush import flush_hits
from issues.sending import delivery
from issues.sending.models import Send


@pytest.fixture(autouse=True)
def buffer(settings, tmp_path):
    """Each test's own buffer: a folder of its own, or an emptied Redis list."""
    settings.ANALYTICS_BUFFER_DIR = tmp_path / "analytics"
    found = get_buffer()
    if isinstance(found, RedisBuffer):
        found.client.delete(KEY, PROCESSING)
    yield found
    if isinstance(found, RedisBuffer):
        found.client.delete(KEY, PROCESSING)


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    return settings.EMAIL_OUTBOX_DIR


def run_send(send: Send) -> Send:
    """Freeze and deliver a send in this process, as the worker would."""
    delivery.freeze_audience(send=send)
    while delivery.deliver_send(send_id=send.pk).next == "more":
        pass
    send.refresh_from_db()
    return send


def flush() -> int:
    return flush_hits()
