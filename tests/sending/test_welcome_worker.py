"""End to end: a welcome sequence of three steps, run by beat's task in a real
Celery worker process, reaching a real SMTP server.

Time is moved forward in the database (confirmations and activations made
earlier), never waited for. Runs in both legs: filesystem broker + SQLite, and
Redis + PostgreSQL.
"""

from collections import Counter
from datetime import timedelta

from issues.sending import tasks
from issues.sending.delivery import welcome
from issues.sending.models import Delivery, Send, WelcomeStep
from subscribers import services as subscriber_services
from subscribers.billing.models import Membership
from tests.conftest import wait_for
from tests.factories.billing import MembershipFactory
from tests.sending.test_worker import worker_env
from tests.sending.welcome_support import (
    confirmed_subscribers,
    make_step,
    move_time_forward,
)

SUBJECTS = ("Welcome to the newsletter", "Three days in", "Ten days in")


def received(smtp_server) -> Counter:
    """Each (subject, recipient) pair the server got, with how often."""
    return Counter(
        (item.message["Subject"], rcpt)
        for item in smtp_server.messages
        for rcpt in item.rcpt_tos
    )


def run_beat_and_wait(step: WelcomeStep, expected: int, timeout: float = 120) -> Send:
    """Run beat's welcome task through the broker; wait for the step's emails."""
    tasks.send_welcome_steps.delay()

    def done():
        send = Send.objects.get(issue=step.issue)
        return (
            send
            if send.status == Send.Status.DONE and send.sent_count == expected
            else None
        )

    return wait_for(
        done, timeout=timeout, interval=0.3, message=f"{step.issue} sent {expected}"
    )


def test_three_steps_each_once_at_its_time_stopping_for_who_left(
    celery_worker_factory, smtp_server
):
    now_step = make_step(SUBJECTS[0], timedelta(0))
    # Free subscribers only: the paying member never gets this one.
    day3 = make_step(SUBJECTS[1], timedelta(days=3), condition="free")
    day10 = make_step(SUBJECTS[2], timedelta(days=10))
    readers = confirmed_subscribers(40)
    leaver, paying = readers[0], readers[1]
    MembershipFactory(subscriber=paying, status=Membership.Status.ACTIVE)
    emails = {r.email for r in readers}
    celery_worker_factory(extra_env=worker_env(smtp_server))

    # Day 0: the first step, to everyone, once.
    run_beat_and_wait(now_step, expected=40)
    assert {rcpt for (subject, rcpt) in received(smtp_server)} == emails
    assert set(received(smtp_server)) == {(SUBJECTS[0], e) for e in emails}
    assert welcome.enqueue_welcome_steps() == []  # nothing more is due
    message = smtp_server.messages[0].message
    html = message.get_body(("html",)).get_content()
    assert "View in your browser" not in html
    assert "/unsubscribe/" in message["List-Unsubscribe"]

    subscriber_services.unsubscribe_subscriber(subscriber=leaver)

    # Day 3 (and a minute): the second step, free subscribers who stayed.
    move_time_forward(timedelta(days=3, minutes=1))
    run_beat_and_wait(day3, expected=38)
    day3_to = {
        rcpt for (subject, rcpt) in received(smtp_server) if subject == SUBJECTS[1]
    }
    assert day3_to == emails - {leaver.email, paying.email}
    assert not Delivery.objects.filter(send__issue=day10.issue).exists()

    # Day 10: the third step, to all who stayed, the paying member included.
    move_time_forward(timedelta(days=7))
    run_beat_and_wait(day10, expected=39)
    day10_to = {
        rcpt for (subject, rcpt) in received(smtp_server) if subject == SUBJECTS[2]
    }
    assert day10_to == emails - {leaver.email}

    # Beat running again, much later, sends nothing more: each once, at its time.
    move_time_forward(timedelta(days=30))
    assert welcome.enqueue_welcome_steps() == []
    counts = received(smtp_server)
    assert set(counts.values()) == {1}
    assert sum(counts.values()) == 40 + 38 + 39
    assert not [
        pair for pair in counts if pair[1] == leaver.email and pair[0] != SUBJECTS[0]
    ]
