"""The email is rendered once per send, and a step that kills workers pauses the send.

Called in this process; tests/security/test_crash_loop.py has the real worker dying.
"""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from issues.sending import delivery, emails, services, tasks
from issues.sending.models import Delivery, RenderedEmail, Send
from issues.sending.transports import open_transport
from tests.sending.conftest import make_subscribers, parse

pytestmark = pytest.mark.django_db


class WorkerDied(BaseException):
    """Stands for the process dying mid-render: nothing after it runs in Python."""


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    return settings.EMAIL_OUTBOX_DIR


@pytest.fixture
def renders(monkeypatch):
    """Count the renders of each segment."""
    calls = Counter()
    real = emails.render_segment

    def counting(**kwargs):
        calls[kwargs["segment"]] += 1
        return real(**kwargs)

    monkeypatch.setattr(emails, "render_segment", counting)
    return calls


def started(issue) -> Send:
    send = services.publish_issue(issue=issue)
    tasks.start_send(send.pk)
    send.refresh_from_db()
    return send


def one_batch_task(send: Send, *, size: int) -> int:
    """Do what a batch task does for one batch: load the email, claim, send."""
    send = Send.objects.select_related("issue").get(pk=send.pk)
    prepared = delivery.prepared_for(send).emails
    rows = delivery.claim_batch(send_id=send.pk, claimant="w:1", size=size)
    if not rows:
        return 0
    with open_transport() as transport:
        delivery.send_batch(
            send_id=send.pk,
            rows=rows,
            prepared=prepared,
            transport=transport,
            claimant="w:1",
        )
    return len(rows)


def deliver_all(send: Send) -> None:
    while delivery.deliver_send(send_id=send.pk).next == "more":
        pass


def test_a_send_is_rendered_once_however_many_batch_tasks_run(issue, outbox, renders):
    make_subscribers(40)
    send = started(issue)
    tasks = 0
    while one_batch_task(send, size=5):
        tasks += 1

    assert tasks == 8
    assert renders == {"free": 1, "paid": 1}
    assert RenderedEmail.objects.filter(send=send).count() == 2
    assert len(list(outbox.glob("*.eml"))) == 40


def test_batch_tasks_load_the_stored_email_and_never_render(issue, outbox, monkeypatch):
    make_subscribers(12)
    send = started(issue)
    assert RenderedEmail.objects.filter(send=send).count() == 2

    def no_render(**kwargs):
        raise AssertionError("a batch task rendered the email")

    # As in another worker process, or this one after a restart: nothing in memory.
    monkeypatch.setattr(emails, "render_segment", no_render)
    deliver_all(send)

    send.refresh_from_db()
    assert send.status == Send.Status.DONE and send.sent_count == 12
    messages = [parse(path.read_bytes()) for path in outbox.glob("*.eml")]
    assert {m["Subject"] for m in messages} == {"Top 10 papers of the year"}
    assert all("readers" in m.get_body(("html",)).get_content() for m in messages)


def test_an_edit_during_the_send_is_rendered_once_more_for_those_not_yet_sent(
    issue, outbox, renders
):
    make_subscribers(8)
    send = started(issue)
    one_batch_task(send, size=4)
    issue.refresh_from_db()
    issue.body = "A corrected body."
    issue.save()
    deliver_all(send)

    assert renders == {"free": 2, "paid": 2}
    bodies = [
        parse(path.read_bytes()).get_body(("html",)).get_content()
        for path in outbox.glob("*.eml")
    ]
    assert sum("A corrected body." in body for body in bodies) == 4


def test_each_rendering_is_counted_before_it_starts_and_the_limit_pauses(
    issue, monkeypatch, settings, renders
):
    settings.SENDING_MAX_WORKER_CRASHES = 3
    make_subscribers(3)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    seen = []

    def dies(**kwargs):
        # Already committed when the dangerous part runs.
        seen.append(Send.objects.get(pk=send.pk).render_attempts)
        raise WorkerDied

    monkeypatch.setattr(emails, "render_segment", dies)
    for _ in range(3):
        with pytest.raises(WorkerDied):
            tasks.start_send(send.pk)
    assert seen == [1, 2, 3]

    tasks.start_send(send.pk)  # the task, handed to a fourth process

    assert len(seen) == 3  # not rendered again
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    assert send.paused_reason.startswith(
        "Rendering this issue's email stopped the worker 3 times"
    )
    assert delivery.deliver_send(send_id=send.pk).next == "stopped"
    assert Delivery.objects.filter(send=send, status="queued").count() == 3


def test_resuming_clears_the_reason_and_sends_the_fixed_issue(
    issue, outbox, monkeypatch, settings
):
    settings.SENDING_MAX_WORKER_CRASHES = 1
    make_subscribers(5)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    real = emails.render_segment

    def dies(**kwargs):
        raise WorkerDied

    monkeypatch.setattr(emails, "render_segment", dies)
    with pytest.raises(WorkerDied):
        tasks.start_send(send.pk)
    tasks.start_send(send.pk)
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED and send.paused_reason

    monkeypatch.setattr(emails, "render_segment", real)  # the body was fixed
    send = services.resume_send(send=send)

    assert send.status == Send.Status.SENDING
    assert send.paused_reason == "" and send.render_attempts == 0
    deliver_all(send)
    send.refresh_from_db()
    assert send.status == Send.Status.DONE and send.sent_count == 5


def test_a_rendering_that_finishes_resets_the_count(issue, settings):
    settings.SENDING_MAX_WORKER_CRASHES = 3
    make_subscribers(1)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    Send.objects.filter(pk=send.pk).update(render_attempts=2)  # two deaths before

    tasks.start_send(send.pk)

    send.refresh_from_db()
    assert send.render_attempts == 0 and send.status == Send.Status.SENDING


def test_a_python_error_while_rendering_pauses_the_send_with_the_error(
    issue, monkeypatch
):
    make_subscribers(2)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)

    def broken(**kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(emails, "render_segment", broken)
    tasks.start_send(send.pk)

    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    assert "RecursionError: maximum recursion depth exceeded" in send.paused_reason


def other_worker(func):
    """Run func in another thread, on its own database connection, and return it."""
    out = {}

    def run():
        try:
            out["result"] = func()
        except Exception as exc:  # noqa: BLE001 - shown by the test's failure
            out["result"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    return out["result"]


def test_a_second_renderer_waits_while_one_is_at_work(
    transactional_db, issue, monkeypatch
):
    make_subscribers(2)
    # Not published: that would start (and finish) the send at once, eagerly.
    send = Send.objects.create(issue=issue)
    delivery.freeze_audience(send=send)
    inner = {}
    real = emails.render_segment

    def meanwhile(**kwargs):
        if not inner:
            # Another batch task starts while this process renders.
            inner["result"] = other_worker(
                lambda: delivery.deliver_send(send_id=send.pk)
            )
        return real(**kwargs)

    monkeypatch.setattr(emails, "render_segment", meanwhile)
    tasks.start_send(send.pk)

    assert inner["result"].next == "wait"
    assert Send.objects.get(pk=send.pk).render_attempts == 0


def test_the_reconciler_queues_nothing_for_a_send_paused_by_the_guard(
    issue, django_capture_on_commit_callbacks
):
    make_subscribers(4)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    delivery.pause_send(
        send_id=send.pk, reason="Rendering this issue's email stopped …"
    )
    Send.objects.filter(pk=send.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    for _ in range(3):
        with django_capture_on_commit_callbacks() as callbacks:
            result = tasks.reconcile_sends()
        assert result["kicked"] == 0 and result["started"] == 0
        assert callbacks == []


def _died_sending(send: Send, *, crashes: int, settings) -> Delivery:
    """Leave one row "sending" by a worker that died, its lease run out."""
    rows = delivery.claim_batch(send_id=send.pk, claimant="dead:1", size=1)
    long_ago = timezone.now() - timedelta(seconds=settings.SENDING_LEASE_SECONDS + 5)
    Delivery.objects.filter(pk=rows[0].id).update(
        status="sending", claimed_at=long_ago, crashes=crashes
    )
    return Delivery.objects.get(pk=rows[0].id)


def test_a_worker_dying_on_a_recipient_sends_it_again_and_counts(issue, settings):
    settings.SENDING_MAX_WORKER_CRASHES = 3
    make_subscribers(3)
    send = started(issue)
    row = _died_sending(send, crashes=1, settings=settings)

    result = tasks.reconcile_sends()

    row.refresh_from_db()
    assert result["resolved"] == 1 and result["failed_after_crashes"] == 0
    assert row.status == "queued" and row.crashes == 2 and row.possibly_duplicate
    send.refresh_from_db()
    assert send.status == Send.Status.SENDING


def test_a_recipient_every_worker_dies_on_fails_and_pauses_the_send(
    issue, settings, outbox
):
    settings.SENDING_MAX_WORKER_CRASHES = 3
    make_subscribers(3)
    send = started(issue)
    row = _died_sending(send, crashes=2, settings=settings)

    result = tasks.reconcile_sends()

    row.refresh_from_db()
    assert result["failed_after_crashes"] == 1 and result["kicked"] == 0
    assert row.status == "failed" and row.crashes == 3 and row.possibly_duplicate
    assert "not sent again" in row.last_error
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    assert send.paused_reason.startswith(f"Sending to {row.email} stopped the worker")
    # Resuming sends the others; the failed one waits for "Retry failed".
    send = services.resume_send(send=send)
    deliver_all(send)
    send.refresh_from_db()
    assert send.sent_count == 2 and send.failed_count == 1
    assert services.retry_failed(send=send) == 1
    row.refresh_from_db()
    assert row.status == "queued" and row.crashes == 0
