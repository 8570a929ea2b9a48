"""Many SMTP sessions per worker, PIPELINING, and backing off when told to."""

from collections.abc import Iterator

import pytest

from issues.sending import delivery, services
from issues.sending.models import Delivery, Send
from tests.sending.conftest import make_subscribers
from tests.support.relay import Relay

pytestmark = pytest.mark.django_db


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def relay_settings(settings, relay):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = relay.host
    settings.EMAIL_PORT = relay.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10
    settings.SENDING_RETRY_BASE_DELAY = 0
    return settings


def send_to(issue, count: int) -> Send:
    make_subscribers(count)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    for _ in range(20):
        if delivery.deliver_send(send_id=send.pk).next == "done":
            break
    send.refresh_from_db()
    return send


def test_one_flight_a_message_over_a_pipelining_relay(issue, relay, relay_settings):
    relay_settings.SENDING_SMTP_SESSIONS = 1
    send = send_to(issue, 30)

    assert send.status == Send.Status.DONE and send.sent_count == 30
    assert sorted(relay.received.values()) == [1] * 30
    (connection,) = relay.connections
    envelopes = [read for read in connection.reads if b"MAIL FROM:" in read]
    # MAIL, RCPT and DATA of every message arrived together...
    assert len(envelopes) == 30
    assert all(b"RCPT TO:" in read and b"DATA\r\n" in read for read in envelopes)
    # ...and, after the first, in the same read as the content and final dot of
    # the message before: one round trip a message.
    assert sum(b"\r\n.\r\nMAIL FROM:" in read for read in envelopes) == 29


def test_sessions_run_side_by_side_and_reconnect_after_their_share(
    issue, relay, relay_settings
):
    relay_settings.SENDING_SMTP_SESSIONS = 5
    relay_settings.SENDING_MESSAGES_PER_CONNECTION = 10
    send = send_to(issue, 200)

    assert send.sent_count == 200
    assert sorted(relay.received.values()) == [1] * 200
    assert relay.most_open == 5
    assert max(c.messages for c in relay.connections) == 10
    assert len(relay.connections) >= 20


def test_a_relay_that_caps_connections_gets_fewer_sessions_and_loses_nothing(
    issue, relay, relay_settings
):
    relay.most_connections = 2
    relay_settings.SENDING_SMTP_SESSIONS = 20
    send = send_to(issue, 300)

    assert send.sent_count == 300
    assert sorted(relay.received.values()) == [1] * 300
    # A refused connection uses up nobody's attempt: the row waits for a session.
    rows = Delivery.objects.filter(send=send)
    assert set(rows.values_list("attempts", flat=True)) == {1}
    # Halving on each refusal: far fewer refusals than the 18 sessions per batch
    # task that a pool of fixed size would keep knocking with.
    assert 0 < relay.refused_connections < 60


def test_slow_down_at_mail_is_retried_and_the_next_message_goes_out(
    issue, relay, relay_settings
):
    relay_settings.SENDING_SMTP_SESSIONS = 1
    relay.mail_hook = lambda n: "451 4.7.0 Slow down" if n in (3, 4) else None
    send = send_to(issue, 10)

    assert send.sent_count == 10
    assert sorted(relay.received.values()) == [1] * 10
    retried = Delivery.objects.filter(send=send, attempts=2)
    assert retried.count() == 2
    # After the refused transaction the session reset it before the next MAIL.
    reads = b"".join(read for c in relay.connections for read in c.reads)
    assert reads.count(b"RSET\r\n") >= 2


def test_a_server_without_pipelining_gets_one_command_at_a_time(
    issue, smtp_settings, settings
):
    smtp_settings.handler.pipelining = False
    settings.SENDING_SMTP_SESSIONS = 3
    send = send_to(issue, 40)

    assert send.sent_count == 40
    assert sorted(smtp_settings.recipients()) == sorted(
        f"reader{n}@example.org" for n in range(40)
    )
