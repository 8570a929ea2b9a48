"""Welcome sequences, called directly (no worker process): who is due, once each,
set-based, and what the email looks like."""

from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from issues.models import Issue
from issues.sending import delivery, services, tasks
from issues.sending.delivery import welcome
from issues.sending.delivery.bookkeeping import reconcile_sends
from issues.sending.health import stalled_sends
from issues.sending.models import Delivery, Send, WelcomeStep
from issues.sending.transports import open_transport
from newsletter.models import Newsletter
from subscribers import services as subscriber_services
from subscribers.billing.models import Membership
from subscribers.models import Subscription
from tests.conftest import enqueued
from tests.factories.billing import MembershipFactory
from tests.sending.conftest import parse
from tests.sending.welcome_support import (
    confirmed_subscribers,
    make_step,
)

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    return settings.EMAIL_OUTBOX_DIR


def outbox_messages(folder):
    return [parse(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def deliver(send_id: int) -> None:
    """Work through the send in this process, as a batch task would."""
    while delivery.deliver_send(send_id=send_id).next == "more":
        pass


def recipients(step: WelcomeStep) -> set[str]:
    return set(
        Delivery.objects.filter(send__issue=step.issue).values_list("email", flat=True)
    )


def test_a_step_is_a_welcome_draft_with_an_idle_send():
    step = make_step("Welcome!", timedelta(0))

    issue = step.issue
    assert issue.kind == Issue.Kind.WELCOME
    assert issue.status == Issue.Status.DRAFT
    assert issue.title == "Welcome!" and "<strong>reader</strong>" in issue.body_html
    assert issue.slug.startswith("welcome-")
    send = Send.objects.get(issue=issue)
    assert send.status == Send.Status.DONE and send.total == 0
    assert step.activated_at is not None


def test_a_step_reaches_those_due_once_however_often_it_runs():
    step = make_step("Welcome!", timedelta(0))
    people = confirmed_subscribers(5)

    first = welcome.enqueue_welcome_steps()
    again = welcome.enqueue_welcome_steps()

    send = Send.objects.get(issue=step.issue)
    assert first == [send.pk] and again == []
    assert recipients(step) == {p.email for p in people}
    assert send.status == Send.Status.SENDING and send.total == 5
    assert Delivery.objects.filter(send=send).count() == 5


def test_a_delayed_step_waits_for_its_time():
    step = make_step("Three days in", 3 * DAY)
    confirmed_subscribers(4)
    now = timezone.now()

    assert welcome.enqueue_welcome_steps(now=now + 2 * DAY) == []
    assert recipients(step) == set()
    assert welcome.enqueue_welcome_steps(now=now + 3 * DAY + timedelta(seconds=1))
    assert len(recipients(step)) == 4


def test_those_who_confirmed_before_activation_do_not_get_it():
    before = confirmed_subscribers(3, confirmed_at=timezone.now() - DAY)
    step = make_step("Welcome!", timedelta(0))
    after = confirmed_subscribers(2, start=10)

    welcome.enqueue_welcome_steps()

    assert recipients(step) == {p.email for p in after}
    assert not recipients(step) & {p.email for p in before}


def test_an_inactive_step_adds_nobody_and_activation_is_recorded_once():
    step = make_step("Welcome!", timedelta(0), active=False)
    assert step.activated_at is None
    confirmed_subscribers(2)
    assert welcome.enqueue_welcome_steps() == []

    steps = WelcomeStep.objects.filter(pk=step.pk)
    services.set_welcome_steps_active(steps=steps, active=True)
    first = WelcomeStep.objects.get(pk=step.pk).activated_at
    services.set_welcome_steps_active(steps=steps, active=False)
    assert welcome.enqueue_welcome_steps() == []
    services.set_welcome_steps_active(
        steps=steps, active=True, now=timezone.now() + DAY
    )

    step.refresh_from_db()
    assert step.activated_at == first  # set once, at the first activation
    confirmed_subscribers(2, start=10)
    welcome.enqueue_welcome_steps()
    assert recipients(step) == {"new10@example.org", "new11@example.org"}


def test_leavers_are_not_added_and_a_queued_one_is_skipped(outbox):
    step = make_step("Welcome!", timedelta(0))
    stays, leaves_early, leaves_late, leaves_list = confirmed_subscribers(4)
    subscriber_services.unsubscribe_subscriber(subscriber=leaves_early)
    Subscription.objects.filter(subscriber=leaves_list).delete()

    [send_id] = welcome.enqueue_welcome_steps()
    assert recipients(step) == {stays.email, leaves_late.email}
    # Queued, then gone before a worker reached it.
    subscriber_services.unsubscribe_subscriber(subscriber=leaves_late)
    deliver(send_id)

    assert [m["To"] for m in outbox_messages(outbox)] == [stays.email]
    send = Send.objects.get(pk=send_id)
    assert send.status == Send.Status.DONE
    assert (send.sent_count, send.skipped_count) == (1, 1)


def test_conditions_free_only_and_not_yet_paying():
    free_only = make_step("For free readers", timedelta(0), condition="free")
    not_paying = make_step("Become a supporter", timedelta(0), condition="unpaid")
    everyone = make_step("Hello", timedelta(0))
    free, paying, complimentary = confirmed_subscribers(3)
    MembershipFactory(subscriber=paying, status=Membership.Status.ACTIVE)
    MembershipFactory(subscriber=complimentary, complimentary=True)

    welcome.enqueue_welcome_steps()

    assert recipients(free_only) == {free.email}
    assert recipients(not_paying) == {free.email, complimentary.email}
    assert recipients(everyone) == {free.email, paying.email, complimentary.email}
    # The paying member's email is the paid version.
    segment = Delivery.objects.get(send__issue=everyone.issue, subscriber=paying)
    assert segment.segment == Delivery.Segment.PAID


def test_each_step_goes_to_the_newsletter_it_belongs_to():
    other = Newsletter.objects.create(
        name="Announcements", slug="announcements", join_by_default=False
    )
    main_step = make_step("Welcome", timedelta(0))
    other_step = make_step("Welcome to announcements", timedelta(0), newsletter=other)
    one, two = confirmed_subscribers(2)
    Subscription.objects.create(subscriber=two, newsletter=other)

    welcome.enqueue_welcome_steps()

    assert recipients(main_step) == {one.email, two.email}
    assert recipients(other_step) == {two.email}


def test_the_enqueue_is_a_fixed_number_of_statements_whatever_the_count(
    django_assert_max_num_queries,
):
    make_step("Welcome!", timedelta(0))
    make_step("Later", 3 * DAY)
    confirmed_subscribers(30)
    with CaptureQueriesContext(connection) as few:
        welcome.enqueue_welcome_steps()
    Delivery.objects.all().delete()
    Send.objects.update(status=Send.Status.DONE, total=0)
    confirmed_subscribers(3000, start=100)

    with django_assert_max_num_queries(len(few)):
        welcome.enqueue_welcome_steps()

    assert Delivery.objects.count() == 3030
    assert len(few) <= 12


def test_blocks_of_ids_are_each_one_insert(monkeypatch):
    monkeypatch.setattr(welcome, "ENQUEUE_CHUNK", 100)
    step = make_step("Welcome!", timedelta(0))
    confirmed_subscribers(450)
    with CaptureQueriesContext(connection) as queries:
        welcome.enqueue_welcome_steps()
    inserts = [q for q in queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 5
    assert len(recipients(step)) == 450


def test_a_run_that_fails_half_way_leaves_nothing_and_the_next_adds_each_once(
    monkeypatch,
):
    monkeypatch.setattr(welcome, "ENQUEUE_CHUNK", 100)
    step = make_step("Welcome!", timedelta(0))
    confirmed_subscribers(350)
    real = welcome.insert_deliveries
    calls = {"n": 0}

    def failing(rows, send):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("the database went away")
        return real(rows, send)

    monkeypatch.setattr(welcome, "insert_deliveries", failing)
    with pytest.raises(ConnectionError):
        welcome.enqueue_welcome_steps()
    assert Delivery.objects.count() == 0  # the step's blocks are one transaction
    assert Send.objects.get(issue=step.issue).total == 0

    monkeypatch.setattr(welcome, "insert_deliveries", real)
    welcome.enqueue_welcome_steps()
    welcome.enqueue_welcome_steps()
    counts = Counter(
        Delivery.objects.filter(send__issue=step.issue).values_list(
            "subscriber_id", flat=True
        )
    )
    assert len(counts) == 350 and set(counts.values()) == {1}
    assert Send.objects.get(issue=step.issue).total == 350


def test_after_a_partial_send_rerunning_and_reconciling_duplicates_nothing(outbox):
    step = make_step("Welcome!", timedelta(0))
    confirmed_subscribers(6)
    [send_id] = welcome.enqueue_welcome_steps()
    # A batch task sent three, then its worker went away.
    batch = delivery.claim_batch(send_id=send_id, claimant="w1", size=3)
    prepared = delivery.prepared_for(Send.objects.get(pk=send_id)).emails
    with open_transport() as transport:
        delivery.send_batch(
            send_id=send_id,
            rows=batch,
            prepared=prepared,
            transport=transport,
            claimant="w1",
        )
    assert welcome.enqueue_welcome_steps() == []  # nobody new is due
    todo = reconcile_sends(now=timezone.now() + timedelta(hours=1))
    assert send_id in todo.kick  # the rest is given new batch tasks
    deliver(send_id)

    sent = Counter(m["To"] for m in outbox_messages(outbox))
    assert len(sent) == 6 and set(sent.values()) == {1}
    send = Send.objects.get(pk=send_id)
    assert send.status == Send.Status.DONE and send.sent_count == send.total == 6
    assert recipients(step) == set(sent)


def test_the_beat_task_queues_batch_tasks_for_sends_that_got_rows(
    django_capture_on_commit_callbacks, settings
):
    make_step("Welcome!", timedelta(0))
    make_step("Nobody due yet", 10 * DAY)
    confirmed_subscribers(2)
    with django_capture_on_commit_callbacks() as callbacks:
        assert tasks.send_welcome_steps.run() == 1
    # One send's batch tasks, as many as a send gets; none for the other step.
    assert len(enqueued(callbacks)) == settings.SENDING_PARALLELISM
    with django_capture_on_commit_callbacks() as callbacks:
        assert tasks.send_welcome_steps.run() == 0
    assert enqueued(callbacks) == []


def test_the_email_has_no_web_version_and_a_working_unsubscribe_link(outbox):
    make_step("Welcome aboard", timedelta(0))
    [reader] = confirmed_subscribers(1)
    [send_id] = welcome.enqueue_welcome_steps()
    deliver(send_id)

    [message] = outbox_messages(outbox)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert message["Subject"] == "Welcome aboard"
    assert "View in your browser" not in html and "/issues/welcome-" not in html
    assert "View it in your browser" not in text
    assert f"/unsubscribe/{reader.token}/" in html
    assert f"/unsubscribe/{reader.token}/" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_editing_a_step_mid_way_sends_the_new_content_to_those_not_reached(outbox):
    step = make_step("Welcome!", timedelta(0), body="First version.")
    confirmed_subscribers(1)
    [send_id] = welcome.enqueue_welcome_steps()
    deliver(send_id)
    services.save_welcome_step(step=step, subject="Welcome!", body="Second version.")
    confirmed_subscribers(1, start=5)
    welcome.enqueue_welcome_steps()
    deliver(send_id)

    bodies = [m.get_body(("plain",)).get_content() for m in outbox_messages(outbox)]
    assert sum("First version." in b for b in bodies) == 1
    assert sum("Second version." in b for b in bodies) == 1


def test_an_idle_welcome_send_is_neither_stalled_nor_reconciled():
    step = make_step("Welcome!", timedelta(0))
    confirmed_subscribers(2)
    [send_id] = welcome.enqueue_welcome_steps()
    deliver(send_id)
    Send.objects.filter(pk=send_id).update(
        heartbeat_at=timezone.now() - timedelta(days=30),
        started_at=timezone.now() - timedelta(days=30),
    )
    later = timezone.now() + timedelta(days=30)

    assert stalled_sends(now=later) == []
    todo = reconcile_sends(now=later)
    assert todo.kick == [] and todo.start == []
    # New subscribers, weeks later: sending again, and not read as stalled.
    confirmed_subscribers(1, start=9)
    welcome.enqueue_welcome_steps()
    assert Send.objects.get(pk=send_id).status == Send.Status.SENDING
    assert stalled_sends() == []
    assert Send.objects.get(issue=step.issue).total == 3


def test_a_welcome_email_cannot_be_published():
    step = make_step("Welcome!", timedelta(0))
    with pytest.raises(services.SendingError, match="welcome email"):
        services.publish_issue(issue=step.issue)
    step.issue.refresh_from_db()
    assert step.issue.status == Issue.Status.DRAFT


def test_the_one_click_unsubscribe_of_a_welcome_email_stops_the_next_steps(outbox):
    make_step("Welcome!", timedelta(0))
    later = make_step("Three days in", 3 * DAY)
    reader, other = confirmed_subscribers(2)
    [send_id] = welcome.enqueue_welcome_steps()
    deliver(send_id)
    message = next(m for m in outbox_messages(outbox) if m["To"] == reader.email)
    url = message["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]
    parts = urlsplit(url)

    # What a mail program sends: no cookie, no CSRF token, no login.
    response = Client(enforce_csrf_checks=True).post(
        f"{parts.path}?{parts.query}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    welcome.enqueue_welcome_steps(now=timezone.now() + 4 * DAY)
    assert recipients(later) == {other.email}
