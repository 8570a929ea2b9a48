"""Many SMTP sessions per worker, PIPELINING, and backing off when told to."""

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from django.db import connection

from issues.sending import delivery, services
from issues.sending.delivery.claims import claim_batch
from issues.sending.delivery.preparing import prepared_for
from issues.sending.delivery.recording import recording_session
from issues.sending.delivery.sessions import SessionPool
from issues.sending.models import Delivery, Send
from issues.sending.transports import open_transport
from tests.conftest import send_smtp_to
from tests.sending.conftest import make_subscribers
from tests.sending.test_crash_guard import other_worker
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
    send_smtp_to(settings, relay.host, relay.port)
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


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_row_another_worker_took_over_is_not_sent(issue, smtp_settings, pipelining):
    smtp_settings.handler.pipelining = pipelining
    make_subscribers(6)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    rows = delivery.claim_batch(send_id=send.pk, claimant="w:1", size=10)
    # Meanwhile this worker's lease on two rows ran out, and the reconciler gave
    # them to another worker.
    taken = [rows[2].id, rows[4].id]
    Delivery.objects.filter(pk__in=taken).update(claimed_by="w:2")

    with open_transport() as transport:
        delivery.send_batch(
            send_id=send.pk,
            rows=rows,
            prepared=delivery.prepared_for(
                Send.objects.select_related("issue").get(pk=send.pk)
            ).emails,
            transport=transport,
            claimant="w:1",
        )

    received = set(smtp_settings.recipients())
    assert received == {r.email for r in rows if r.id not in taken}
    theirs = Delivery.objects.filter(pk__in=taken)
    assert set(theirs.values_list("status", "claimed_by", "attempts")) == {
        ("queued", "w:2", 0)
    }


def test_a_batch_longer_than_the_lease_keeps_its_rows(
    transactional_db, issue, smtp_settings, settings
):
    settings.SENDING_LEASE_SECONDS = 1
    settings.SENDING_SMTP_SESSIONS = 1
    smtp_settings.handler.data_hook = lambda envelope: time.sleep(0.05)
    make_subscribers(60)
    # Not published: on a committing database that would send it at once, eagerly.
    send = Send.objects.create(issue=issue)
    assert delivery.start_send(send_id=send.pk)
    stop = threading.Event()
    taken = []

    def reconciling_and_claiming():
        # Once this worker holds every row: beat's reconciler, far more often than
        # every minute, and another worker ready to take whatever it frees.
        unclaimed = Delivery.objects.filter(send=send, claimed_by="", sent_at=None)
        while unclaimed.exists() and not stop.is_set():
            stop.wait(0.01)
        while not stop.is_set():
            delivery.reconcile_sends()
            rows = delivery.claim_batch(send_id=send.pk, claimant="w:2", size=100)
            taken.extend(rows or [])
            stop.wait(0.2)

    reconciler = threading.Thread(target=lambda: other_worker(reconciling_and_claiming))
    reconciler.start()
    try:
        result = delivery.deliver_send(send_id=send.pk)
    finally:
        stop.set()
        reconciler.join(30)

    # Three seconds of sending on a one-second lease: renewed while it worked, so
    # no row was freed under it, and it sent them all in one go.
    assert taken == []
    assert result.sent == 60
    assert sorted(Counter(smtp_settings.recipients()).values()) == [1] * 60
    assert not Delivery.objects.filter(send=send, possibly_duplicate=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_slow_claim_does_not_hold_back_the_messages_in_flight(
    issue, relay, relay_settings
):
    """On PostgreSQL the "sending" marks have a thread and connection of their own:
    while the recording thread is busy claiming the next rows, the sessions' marks
    are written and their messages go out. On SQLite (one writer at a time) the
    marks wait for the claim, and the send still completes."""
    make_subscribers(6)
    # Not publish_issue(): outside a test transaction its task would send at once.
    send = Send.objects.create(issue=issue)
    delivery.freeze_audience(send=send)
    prepared = prepared_for(Send.objects.select_related("issue").get(pk=send.pk))
    batches = [
        claim_batch(send_id=send.pk, claimant="w", size=3),
        claim_batch(send_id=send.pk, claimant="w", size=3),
    ]
    separate = connection.vendor == "postgresql"
    seen: list[int] = []  # messages out when the slow claim ended

    def slow_claim():
        if len(batches) == 1:
            # The second claim lasts until the first rows are out (or gives up).
            deadline = time.monotonic() + (10 if separate else 0.5)
            while sum(relay.received.values()) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            seen.append(sum(relay.received.values()))
        return batches.pop(0) if batches else []

    with recording_session():
        run = SessionPool(
            send_id=send.pk,
            prepared=prepared.emails,
            claimant="w",
            sessions=3,
            transport_factory=open_transport,
            source=slow_claim,
            deadline=float("inf"),
        ).run()

    assert run.sent == 6
    assert sorted(relay.received.values()) == [1] * 6
    assert set(Delivery.objects.filter(send=send).values_list("status", flat=True)) == {
        Delivery.Status.SENT
    }
    assert len(seen) == 1
    if separate:
        # Every row of the first batch went out while the claim ran. (On SQLite
        # only the rows marked before it began can, so the count there is a race.)
        assert seen == [3]
