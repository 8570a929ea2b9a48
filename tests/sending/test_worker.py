"""End to end: a real Celery worker process sends to a real SMTP server.

These run in both legs: filesystem broker + SQLite, and Redis + PostgreSQL.
"""

from collections import Counter

from django.db.models import Sum

from issues.sending import services
from issues.sending.models import Delivery, Send
from subscribers.models import Subscriber
from tests.conftest import wait_for
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers


def worker_env(smtp_server, **extra) -> dict:
    env = {
        "EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}",
        "SENDING_BATCH_SIZE": "100",
        "SENDING_RETRY_BASE_DELAY": "0.2",
        "SENDING_RETRY_MAX_DELAY": "1",
        "SENDING_MAX_ATTEMPTS": "15",
    }
    env.update({key: str(value) for key, value in extra.items()})
    return env


def wait_until_done(send: Send, timeout: float = 180) -> Send:
    def done():
        send.refresh_from_db()
        return send.status == Send.Status.DONE

    wait_for(done, timeout=timeout, interval=0.5, message=f"send {send.pk} done")
    return send


def test_send_to_2000_subscribers_arrives_once_each_with_headers(
    celery_worker_factory, smtp_server
):
    subscribers = make_subscribers(2000)
    issue = IssueFactory(title="Top 10 papers of the year")
    celery_worker_factory(extra_env=worker_env(smtp_server))

    send = wait_until_done(services.publish_issue(issue=issue))

    received = Counter(smtp_server.recipients())
    assert set(received) == {s.email for s in subscribers}
    assert max(received.values()) == 1
    assert send.sent_count == send.total == 2000
    message_ids = set()
    tokens = {s.email: s.token for s in subscribers}
    for item in smtp_server.messages:
        message = item.message
        to = item.rcpt_tos[0]
        assert message["Subject"] == "Top 10 papers of the year"
        assert message["To"] == to
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert f"/unsubscribe/{tokens[to]}/?issue=" in message["List-Unsubscribe"]
        assert "<mailto:" in message["List-Unsubscribe"]
        assert message["List-Id"]
        message_ids.add(message["Message-ID"])
        html = message.get_body(("html",)).get_content()
        assert f"/unsubscribe/{tokens[to]}/" in html
        assert to in message.get_body(("plain",)).get_content()
    assert len(message_ids) == 2000
    assert Delivery.objects.filter(send=send, status="sent").count() == 2000


def test_publishing_twice_sends_each_subscriber_once(
    celery_worker_factory, smtp_server
):
    make_subscribers(300)
    issue = IssueFactory()
    celery_worker_factory(extra_env=worker_env(smtp_server))

    first = services.publish_issue(issue=issue)
    second = services.publish_issue(issue=issue)
    wait_until_done(first)

    assert first.pk == second.pk
    assert Send.objects.filter(issue=issue).count() == 1
    received = Counter(smtp_server.recipients())
    assert len(received) == 300
    assert set(received.values()) == {1}


def test_server_refusing_every_third_message_still_gets_everything_once(
    celery_worker_factory, smtp_server
):
    make_subscribers(600)
    issue = IssueFactory()
    seen = {"n": 0}

    def every_third(envelope):
        seen["n"] += 1
        return "451 4.3.0 Try again later" if seen["n"] % 3 == 0 else None

    smtp_server.handler.data_hook = every_third
    celery_worker_factory(extra_env=worker_env(smtp_server))

    send = wait_until_done(services.publish_issue(issue=issue))

    received = Counter(smtp_server.recipients())
    assert len(received) == 600
    assert set(received.values()) == {1}
    assert send.sent_count == 600
    refusals = seen["n"] - 600
    assert refusals >= 299  # a third of all attempts was refused
    # Every attempt was recorded: one per DATA the server saw.
    attempts = Delivery.objects.filter(send=send).aggregate(n=Sum("attempts"))["n"]
    assert attempts == seen["n"]
    assert Delivery.objects.filter(send=send, attempts__gt=1).count() >= 150


def test_permanent_refusals_mark_rows_bounced_while_the_rest_arrive(
    celery_worker_factory, smtp_server
):
    subscribers = make_subscribers(200)
    issue = IssueFactory()
    refused = {s.email for s in subscribers[::10]}
    smtp_server.handler.rcpt_hook = lambda address: (
        "550 5.1.1 No such user here" if address in refused else None
    )
    celery_worker_factory(extra_env=worker_env(smtp_server))

    send = wait_until_done(services.publish_issue(issue=issue))

    assert set(smtp_server.recipients()) == {s.email for s in subscribers} - refused
    bounced = Delivery.objects.filter(send=send, status=Delivery.Status.BOUNCED)
    assert set(bounced.values_list("email", flat=True)) == refused
    assert all("550" in error for error in bounced.values_list("last_error", flat=True))
    assert send.bounced_count == len(refused)
    # A hard bounce suppresses the address: it gets nothing more.
    assert not Subscriber.objects.receiving().filter(email__in=refused).exists()


def test_rejected_message_marks_row_failed_and_it_can_be_retried(
    celery_worker_factory, smtp_server
):
    subscribers = make_subscribers(50)
    issue = IssueFactory()
    rejected = subscribers[7].email
    smtp_server.handler.data_hook = lambda envelope: (
        "554 5.7.1 Message refused" if rejected in envelope.rcpt_tos else None
    )
    celery_worker_factory(extra_env=worker_env(smtp_server))

    send = wait_until_done(services.publish_issue(issue=issue))
    assert send.failed_count == 1
    failed = Delivery.objects.get(send=send, status=Delivery.Status.FAILED)
    assert failed.email == rejected and "554" in failed.last_error

    smtp_server.handler.data_hook = None
    assert services.retry_failed(send=send) == 1
    wait_until_done(send)
    assert Counter(smtp_server.recipients())[rejected] == 1
    assert send.sent_count == 50


def test_two_workers_share_one_rendering_of_the_email(
    celery_worker_factory, smtp_server
):
    make_subscribers(400)
    issue = IssueFactory()
    env = worker_env(smtp_server, SENDING_BATCH_SIZE=20, SENDING_PARALLELISM=8)
    workers = [celery_worker_factory(extra_env=env) for _ in range(2)]

    send = wait_until_done(services.publish_issue(issue=issue))

    assert send.sent_count == 400
    assert set(Counter(smtp_server.recipients()).values()) == {1}

    # Every one of the send's eight batch tasks runs, in four worker processes,
    # and loads the email; one process rendered it, once. The send can be done
    # before the last of them has started.
    def batch_tasks_ran() -> int:
        logs = [worker.output() for worker in workers]
        return sum(log.count("tasks.deliver_send[") for log in logs)

    wait_for(lambda: batch_tasks_ran() >= 8, timeout=30, message="8 batch tasks")
    logs = [worker.output() for worker in workers]
    assert sum(log.count("Rendered the email of send") for log in logs) == 1
