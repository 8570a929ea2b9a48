"""The sending services, called directly (no worker process)."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from issues.models import Issue
from issues.sending import delivery, services, tasks
from issues.sending.emails.tracking import read_link_part
from issues.sending.models import Delivery, Send
from issues.sending.transports import open_transport
from subscribers.models import Subscriber
from tests.conftest import enqueued
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers, parse
from tests.sending.test_send_rate import FakeClock
from tests.support.links import html_links, untracked

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    return settings.EMAIL_OUTBOX_DIR


def outbox_messages(folder):
    return [parse(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def run_send(send: Send) -> Send:
    """Freeze and deliver a send in this process, as the worker would."""
    delivery.freeze_audience(send=send)
    while delivery.deliver_send(send_id=send.pk).next == "more":
        pass
    send.refresh_from_db()
    return send


def test_publishing_twice_makes_one_send(issue, django_capture_on_commit_callbacks):
    make_subscribers(3)
    with django_capture_on_commit_callbacks() as callbacks:
        first = services.publish_issue(issue=issue)
        second = services.publish_issue(issue=issue)
    assert first.pk == second.pk
    assert Send.objects.filter(issue=issue).count() == 1
    assert len(enqueued(callbacks)) == 1  # the send is started once
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED and issue.published_at


def test_freezing_writes_one_delivery_per_receiving_subscriber(issue):
    make_subscribers(25)
    Subscriber.objects.create(email="pending@example.org")  # not confirmed
    send = services.publish_issue(issue=issue)

    assert delivery.freeze_audience(send=send) == 25
    assert delivery.freeze_audience(send=send) == 0  # only once

    send.refresh_from_db()
    assert send.status == Send.Status.SENDING and send.total == 25
    assert Delivery.objects.filter(send=send, status="queued").count() == 25
    assert not Delivery.objects.filter(email="pending@example.org").exists()


def test_paid_segment_comes_from_the_paywall_rule(issue):
    readers = make_subscribers(4)
    MembershipFactory(subscriber=readers[1], status="active")
    MembershipFactory(subscriber=readers[3], complimentary=True)
    MembershipFactory(subscriber=readers[2], status="canceled")
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    segments = dict(Delivery.objects.values_list("email", "segment"))
    assert segments == {
        "reader0@example.org": "free",
        "reader1@example.org": "paid",
        "reader2@example.org": "free",
        "reader3@example.org": "paid",
    }


def test_someone_joining_mid_send_does_not_get_the_issue(issue, outbox):
    make_subscribers(3)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    make_subscribers(1, start=100)  # joins after the audience was frozen

    send = run_send(send)

    recipients = {m["To"] for m in outbox_messages(outbox)}
    assert "reader100@example.org" not in recipients
    assert len(recipients) == 3 and send.status == Send.Status.DONE


def test_someone_unsubscribing_before_their_turn_is_skipped(issue, outbox):
    subscribers = make_subscribers(3)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    Subscriber.objects.filter(pk=subscribers[1].pk).update(
        status=Subscriber.Status.UNSUBSCRIBED
    )

    send = run_send(send)

    recipients = {m["To"] for m in outbox_messages(outbox)}
    assert subscribers[1].email not in recipients
    assert send.skipped_count == 1 and send.sent_count == 2


def test_claims_hand_out_each_row_once(issue):
    make_subscribers(30)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    first = delivery.claim_batch(send_id=send.pk, claimant="a", size=20)
    second = delivery.claim_batch(send_id=send.pk, claimant="b", size=20)
    third = delivery.claim_batch(send_id=send.pk, claimant="c", size=20)
    ids = [row.id for row in first + second + third]
    assert len(first) == 20 and len(second) == 10 and third == []
    assert len(set(ids)) == 30


def test_a_claim_is_one_statement_on_postgresql(issue):
    """At a thousand messages a second the claim runs on the recording thread's
    critical path: on PostgreSQL it checks the send, beats its heart, takes the
    rows and reads their subscribers in one round trip."""
    subscribers = make_subscribers(6)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    Send.objects.filter(pk=send.pk).update(heartbeat_at=None)
    Subscriber.objects.filter(pk=subscribers[2].pk).update(paused=True)

    with CaptureQueriesContext(connection) as claimed:
        rows = delivery.claim_batch(send_id=send.pk, claimant="a", size=4)

    statements = [q["sql"] for q in claimed.captured_queries]
    writes = [sql for sql in statements if sql.lstrip().startswith("UPDATE")]
    if connection.vendor == "postgresql":
        # The claim itself, then the one paused subscriber's row marked skipped.
        assert len(statements) == 2 and statements[0].lstrip().startswith("WITH")
    else:
        assert len(writes) == 3
    by_email = {s.email: s for s in subscribers}
    assert [row.email for row in rows] == [subscribers[n].email for n in (0, 1, 3)]
    assert all(row.token == by_email[row.email].token for row in rows)
    assert all(row.name == by_email[row.email].name for row in rows)
    skipped = Delivery.objects.get(send=send, email=subscribers[2].email)
    assert skipped.status == Delivery.Status.SKIPPED and skipped.claimed_by == "a"
    assert Delivery.objects.filter(send=send, claimed_by="a").count() == 4
    send.refresh_from_db()
    assert send.heartbeat_at is not None


def test_paused_send_claims_nothing_until_resumed(
    issue, django_capture_on_commit_callbacks
):
    make_subscribers(5)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    services.pause_send(send=send)
    assert delivery.claim_batch(send_id=send.pk, claimant="a", size=10) is None
    with django_capture_on_commit_callbacks() as callbacks:
        services.resume_send(send=send)
    assert send.status == Send.Status.SENDING and callbacks
    assert len(delivery.claim_batch(send_id=send.pk, claimant="a", size=10)) == 5


def test_email_carries_the_list_headers_and_personal_links(issue, outbox, settings):
    from newsletter.models import Publication

    publication = Publication.load()
    publication.name = "Papers Weekly"
    publication.sender_email = "news@papers.example"
    publication.postal_address = "1 Research Way\nCambridge"
    publication.save()
    issue.newsletter.name = "The monthly issue"
    issue.newsletter.save()
    subscribers = make_subscribers(2)
    run_send(services.publish_issue(issue=issue))

    messages = {m["To"]: m for m in outbox_messages(outbox)}
    assert len(messages) == 2
    ids = set()
    for subscriber in subscribers:
        message = messages[subscriber.email]
        assert message["From"] == "Papers Weekly <news@papers.example>"
        assert message["Subject"] == "Top 10 papers of the year"
        assert message["List-Id"] == "The monthly issue <newsletter.papers.example>"
        # The link names the issue, so that leaving counts against it.
        url = f"{settings.SITE_URL}/unsubscribe/{subscriber.token}/?issue={issue.pk}"
        assert message["List-Unsubscribe"].startswith(f"<{url}>, <mailto:")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        ids.add(message["Message-ID"])
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        for part in (html, text):
            assert url in part
            assert subscriber.email in part
            assert "1 Research Way" in part
        web_url = f"{settings.SITE_URL}{issue.get_absolute_url()}"
        # In both parts, through a tracked link that leads there.
        assert web_url not in text and web_url in untracked(text)
        assert web_url in {tracked_target(href) for href in html_links(html)}
        assert 'src="http://testserver/media/chart.png"' in html  # absolute
        assert 'style="' in html  # CSS inlined
        assert "Hello readers." in text
    assert len(ids) == 2


def tracked_target(href: str) -> str:
    """Return where a tracked link (…/r/<delivery>/<link>/) leads, else href."""
    pieces = href.rstrip("/").split("/")
    if len(pieces) > 3 and pieces[-3] == "r":
        link = read_link_part(pieces[-1])
        return link.url if link else ""
    return href


def test_subject_cannot_inject_headers(outbox):
    make_subscribers(1)
    issue = IssueFactory(title="Hello\r\nBcc: victim@example.org\nX-Evil: 1")
    run_send(services.publish_issue(issue=issue))
    (message,) = outbox_messages(outbox)
    assert message["Subject"] == "Hello Bcc: victim@example.org X-Evil: 1"
    assert message["Bcc"] is None and message["X-Evil"] is None


def test_non_ascii_subject_and_sender_are_encoded(outbox):
    from newsletter.models import Publication

    publication = Publication.load()
    publication.sender_name = "Café Ñews"
    publication.save()
    make_subscribers(1)
    issue = IssueFactory(title="Über die Transformer — ein Überblick")
    run_send(services.publish_issue(issue=issue))
    (message,) = outbox_messages(outbox)
    assert message["Subject"] == "Über die Transformer — ein Überblick"
    assert message["From"].addresses[0].display_name == "Café Ñews"


def test_free_readers_get_the_free_part_and_an_invitation(outbox, paid_enabled):
    readers = make_subscribers(2)
    MembershipFactory(subscriber=readers[1], status="active")
    issue = IssueFactory(
        body="Everyone reads this.\n\n<!-- paywall -->\n\nSupporters read this."
    )
    assert issue.paid_html, "the renderer splits at the paywall"
    run_send(services.publish_issue(issue=issue))

    messages = {m["To"]: m for m in outbox_messages(outbox)}
    free = messages["reader0@example.org"].get_body(("html",)).get_content()
    paid = messages["reader1@example.org"].get_body(("html",)).get_content()
    assert "Everyone reads this." in free and "Supporters read this." not in free
    assert "Become a supporter" in free
    assert "Everyone reads this." in paid and "Supporters read this." in paid
    assert "Become a supporter" not in paid


def test_issue_is_rendered_once_per_segment_not_per_recipient(
    issue, outbox, monkeypatch
):
    from issues.sending import emails

    calls = Counter()
    real = emails.render_segment

    def counting(**kwargs):
        calls[kwargs["segment"]] += 1
        return real(**kwargs)

    monkeypatch.setattr(emails, "render_segment", counting)
    make_subscribers(50)
    run_send(services.publish_issue(issue=issue))
    assert calls == {"free": 1, "paid": 1}
    assert len(outbox_messages(outbox)) == 50


def test_scheduled_issue_is_published_once_its_time_has_come(
    issue, django_capture_on_commit_callbacks
):
    make_subscribers(2)
    later = timezone.now() + timedelta(hours=1)
    services.schedule_issue(issue=issue, publish_at=later)
    assert services.publish_due_issues() == []
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SCHEDULED

    with django_capture_on_commit_callbacks():
        sends = services.publish_due_issues(now=later + timedelta(seconds=1))
    assert [s.issue_id for s in sends] == [issue.pk]
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED
    assert services.publish_due_issues(now=later + timedelta(seconds=2)) == []


def test_a_sent_issue_cannot_be_scheduled(issue):
    services.publish_issue(issue=issue)
    with pytest.raises(services.SendingError):
        services.schedule_issue(issue=issue, publish_at=timezone.now())


def test_test_email_is_marked_and_publishes_nothing(issue, outbox):
    make_subscribers(3)
    assert services.send_test_email(issue=issue, emails=["me@example.org"]) == 1
    (message,) = outbox_messages(outbox)
    assert message["Subject"] == "[Test] Top 10 papers of the year"
    assert message["X-Quire-Test"] == "yes"
    assert "This is a test email" in message.get_body(("plain",)).get_content()
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT
    assert not Send.objects.exists()


def test_reconciler_resends_rows_a_dead_worker_left_sending(issue, settings):
    make_subscribers(6)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    rows = delivery.claim_batch(send_id=send.pk, claimant="dead:1", size=4)
    # The dead worker was handing one message to the server; three were waiting.
    Delivery.objects.filter(pk=rows[0].id).update(status="sending")
    long_ago = timezone.now() - timedelta(seconds=settings.SENDING_LEASE_SECONDS + 5)
    Delivery.objects.filter(claimed_by="dead:1").update(claimed_at=long_ago)

    result = tasks.reconcile_sends()

    assert result["resolved"] == 1 and result["freed"] == 3
    flagged = Delivery.objects.get(pk=rows[0].id)
    assert flagged.status == "queued" and flagged.possibly_duplicate
    send.refresh_from_db()
    assert send.resolved_after_crash == 1
    assert not Delivery.objects.exclude(claimed_by="").exists()


def test_reconciler_leaves_live_workers_rows_alone(issue):
    make_subscribers(4)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    rows = delivery.claim_batch(send_id=send.pk, claimant="alive:1", size=4)
    Delivery.objects.filter(pk=rows[0].id).update(status="sending")
    result = tasks.reconcile_sends()
    assert result["resolved"] == 0 and result["freed"] == 0
    assert Delivery.objects.filter(claimed_by="alive:1").count() == 4


def test_reconciler_restarts_a_send_whose_broker_messages_were_lost(
    issue, django_capture_on_commit_callbacks, settings
):
    make_subscribers(4)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    Send.objects.filter(pk=send.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        result = tasks.reconcile_sends()
    assert result["kicked"] == 1
    assert len(callbacks) == settings.SENDING_PARALLELISM


def test_reconciler_finishes_a_send_with_nothing_left(issue, outbox):
    make_subscribers(2)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    delivery.send_batch(
        send_id=send.pk,
        rows=delivery.claim_batch(send_id=send.pk, claimant="w", size=10),
        prepared=delivery.prepared_for(
            Send.objects.select_related("issue").get(pk=send.pk)
        ).emails,
        transport=open_transport(),
        claimant="w",
    )
    assert tasks.reconcile_sends()["finished"] == 1
    send.refresh_from_db()
    assert send.status == Send.Status.DONE and send.sent_count == 2


def test_transient_failures_back_off_then_fail_at_the_limit(
    issue, smtp_settings, settings
):
    settings.SENDING_MAX_ATTEMPTS = 3
    settings.SENDING_RETRY_BASE_DELAY = 10
    smtp_settings.handler.rcpt_hook = lambda address: "451 4.7.1 Greylisted"
    make_subscribers(1)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)

    result = delivery.deliver_send(send_id=send.pk)
    row = Delivery.objects.get(send=send)
    assert result.next == "wait" and 9 < result.wait <= 10
    assert row.status == "queued" and row.attempts == 1 and "451" in row.last_error
    first_retry = row.next_attempt_at

    Delivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    delivery.deliver_send(send_id=send.pk)
    row.refresh_from_db()
    assert row.attempts == 2
    assert row.next_attempt_at - timezone.now() > timedelta(seconds=15)  # doubled
    assert first_retry

    Delivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert delivery.deliver_send(send_id=send.pk).next == "done"
    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 3


def test_smtp_server_going_away_is_retried_later(issue, smtp_settings, settings):
    settings.EMAIL_PORT = smtp_settings.port + 1  # nobody listens there
    settings.EMAIL_TIMEOUT = 2
    make_subscribers(5)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)

    result = delivery.deliver_send(send_id=send.pk)

    assert result.next == "wait"
    counts = Delivery.objects.filter(send=send).counts()
    assert counts["queued"] == 5 and counts["sent"] == 0
    # It gave up after a few connection failures, before handing over any message:
    # no row used up an attempt, and every row waits like a retry.
    assert Delivery.objects.filter(send=send, attempts=0).count() == 5
    assert (
        Delivery.objects.filter(
            send=send, claimed_by="", next_attempt_at__gt=timezone.now()
        ).count()
        == 5
    )


def test_hard_bounce_at_rcpt_suppresses_the_address(issue, smtp_settings):
    subscribers = make_subscribers(3)
    smtp_settings.handler.rcpt_hook = lambda address: (
        "550 5.1.1 User unknown" if address == subscribers[0].email else None
    )
    send = run_send(services.publish_issue(issue=issue))
    assert send.bounced_count == 1 and send.sent_count == 2
    subscriber = Subscriber.objects.get(pk=subscribers[0].pk)
    assert subscriber.status == Subscriber.Status.BOUNCED


def test_publish_issue_command_publishes_once(
    issue, django_capture_on_commit_callbacks
):
    from io import StringIO

    make_subscribers(2)
    out = StringIO()
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("publish_issue", issue.slug, stdout=out)
        call_command("publish_issue", issue.slug, stdout=out)
    assert "sending to 2 subscribers" in out.getvalue()
    assert "Nothing more was sent" in out.getvalue()
    assert len(enqueued(callbacks)) == 1


def test_publish_issue_command_names_an_unknown_slug():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no-such-issue"):
        call_command("publish_issue", "no-such-issue")


@pytest.mark.django_db(transaction=True)
def test_publishing_from_two_places_at_once_makes_one_send():
    issue = IssueFactory()
    make_subscribers(2)
    barrier = threading.Barrier(4)
    sends, errors = [], []

    def publish():
        try:
            barrier.wait()
            sends.append(services.publish_issue(issue=issue).pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(sends)) == 1
    assert Send.objects.filter(issue=issue).count() == 1


def test_rate_limit_holds_across_callers(settings, tmp_path):
    """The leg's own limiter: a file lock embedded, Redis in the services leg."""
    import time

    from issues.sending.send_rate import FileRateLimiter, RedisRateLimiter

    # Whole seconds from now: this run's windows are its own in a shared Redis.
    clock = FakeClock(start=float(int(time.time())))

    def caller():
        # Each worker process builds its own limiter; they share the count.
        if settings.CELERY_BROKER_URL.startswith("redis://"):
            return RedisRateLimiter(
                20, settings.CELERY_BROKER_URL, clock=clock.time, sleep=clock.sleep
            )
        return FileRateLimiter(
            20, tmp_path / "sending-rate", clock=clock.time, sleep=clock.sleep
        )

    first, second = caller(), caller()
    sent = []
    for _ in range(25):
        for name, limiter in (("first", first), ("second", second)):
            limiter.acquire()
            sent.append((int(clock.now - clock.start), name))

    per_second = Counter(second for second, _ in sent)
    assert per_second == {0: 20, 1: 20, 2: 10}
    # Each window holds both callers' messages: one limit, not one per caller.
    assert Counter(sent) == {
        (0, "first"): 10,
        (0, "second"): 10,
        (1, "first"): 10,
        (1, "second"): 10,
        (2, "first"): 5,
        (2, "second"): 5,
    }


def test_dkim_signature_covers_the_unsubscribe_headers(issue, outbox, settings):
    import dkim

    from tests.sending.test_events import FIXTURES

    settings.DKIM_PRIVATE_KEY = str(FIXTURES / "dkim-test-key.pem")
    settings.DKIM_SELECTOR = "quire"
    settings.DKIM_DOMAIN = "papers.example"
    public = (FIXTURES / "dkim-test-key.pub.b64").read_text().strip()
    make_subscribers(1)
    run_send(services.publish_issue(issue=issue))
    (path,) = outbox.glob("*.eml")
    raw = path.read_bytes()

    signature = parse(raw)["DKIM-Signature"]
    signed = signature.split("h=")[1].split(";")[0].lower()
    assert "list-unsubscribe" in signed and "list-unsubscribe-post" in signed

    def dns(name, timeout=5):
        assert name == b"quire._domainkey.papers.example."
        return f"v=DKIM1; k=rsa; p={public}".encode()

    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        b"List-Unsubscribe-Post: nothing",
    )
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_delete_me_erases_the_address_from_the_send_history(issue):
    from issues.sending.models import EmailEvent
    from subscribers.services import delete_subscriber

    ada, grace = make_subscribers(2)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    EmailEvent.objects.create(
        event_id="evt-1", event_type="opened", email=ada.email, timestamp=timezone.now()
    )

    delete_subscriber(subscriber=ada)

    emails = set(Delivery.objects.filter(send=send).values_list("email", flat=True))
    assert ada.email not in emails
    assert grace.email in emails
    assert Delivery.objects.filter(send=send).count() == 2
    assert not EmailEvent.objects.filter(email=ada.email).exists()
