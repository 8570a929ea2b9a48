"""End to end, with a real Celery worker and SMTP server: each issue reaches its
audience exactly (paid only, a segment, its own newsletter), a web-only issue
emails nobody, and someone who leaves the newsletter after the freeze is skipped.

These run in both legs: filesystem broker + SQLite, and Redis + PostgreSQL.
"""

from collections import Counter
from datetime import timedelta

from django.utils import timezone

from issues.analytics.models import Activity
from issues.models import Issue
from issues.sending import delivery, services, tasks
from issues.sending.models import Delivery, Send
from newsletter.models import Newsletter
from subscribers.billing.models import Membership
from subscribers.models import Label, Segment, Subscriber, Subscription
from tests.conftest import wait_for
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers
from tests.sending.test_worker import wait_until_done, worker_env


def by_subject(smtp_server) -> dict[str, Counter]:
    """Return who received each subject, and how often."""
    received: dict[str, Counter] = {}
    for item in smtp_server.messages:
        subject = item.message["Subject"]
        received.setdefault(subject, Counter()).update(item.rcpt_tos)
    return received


def test_a_paid_only_send_reaches_exactly_the_paying_members(
    celery_worker_factory, smtp_server
):
    readers = make_subscribers(40)
    paying = {s.email for s in readers[:6]}
    for subscriber in readers[:4]:
        MembershipFactory(subscriber=subscriber, status=Membership.Status.ACTIVE)
    MembershipFactory(subscriber=readers[4], status=Membership.Status.TRIALING)
    MembershipFactory(subscriber=readers[5], complimentary=True)
    # Lapsed: a membership without paid access now.
    MembershipFactory(subscriber=readers[6], status=Membership.Status.CANCELED)
    paused = readers[7]
    MembershipFactory(subscriber=paused, status=Membership.Status.ACTIVE)
    Subscriber.objects.filter(pk=paused.pk).update(paused=True)
    issue = IssueFactory(title="For supporters", audience=Issue.Audience.PAID)
    assert services.audience_counts(issue=issue) == {"total": 6, "paid": 6, "free": 0}
    celery_worker_factory(extra_env=worker_env(smtp_server))

    send = wait_until_done(services.publish_issue(issue=issue))

    received = Counter(smtp_server.recipients())
    assert set(received) == paying
    assert set(received.values()) == {1}
    assert send.total == send.sent_count == 6
    assert set(
        Delivery.objects.filter(send=send).values_list("segment", flat=True)
    ) == {Delivery.Segment.PAID}


def test_a_segment_send_reaches_exactly_the_segment(celery_worker_factory, smtp_server):
    readers = make_subscribers(30)
    ml, other = Label.objects.create(name="ml"), Label.objects.create(name="other")
    # The last issue sent: who opened or clicked it, as people.
    earlier = IssueFactory(published=True, title="Last month")
    last = Send.objects.create(
        issue=earlier, status=Send.Status.DONE,
        started_at=timezone.now() - timedelta(days=20),
    )  # fmt: skip
    engaged = set()
    for n, subscriber in enumerate(readers[:20]):
        row = Delivery.objects.create(
            send=last, subscriber=subscriber, email=subscriber.email, status="sent"
        )
        if n % 2 == 0:
            human = n % 4 == 0
            Activity.objects.create(
                delivery_id=row.pk, issue=earlier,
                first_human_open=timezone.now() if human else None,
                first_machine_open=None if human else timezone.now(),
            )  # fmt: skip
            if human:
                engaged.add(subscriber.email)
    for subscriber in readers[:10]:
        subscriber.labels.add(ml)
    for subscriber in readers[10:]:
        subscriber.labels.add(other)
    segment = Segment.objects.create(name="Engaged ML readers", engaged_in_last=1)
    segment.labels.add(ml)
    # Labelled ml (0-9) and a human open (0, 4, 8).
    expected = {readers[n].email for n in (0, 4, 8)}
    assert expected == engaged & {s.email for s in readers[:10]}
    issue = IssueFactory(
        title="For the segment", audience=Issue.Audience.SEGMENT, segment=segment
    )
    assert services.audience_size(issue=issue) == 3
    celery_worker_factory(extra_env=worker_env(smtp_server))

    send = wait_until_done(services.publish_issue(issue=issue))

    received = Counter(smtp_server.recipients())
    assert set(received) == expected
    assert set(received.values()) == {1}
    assert send.total == 3


def test_a_web_only_issue_emails_nobody(celery_worker_factory, smtp_server):
    make_subscribers(25)
    web = IssueFactory(title="On the site only", audience=Issue.Audience.WEB)
    emailed = IssueFactory(title="Emailed after it")
    celery_worker_factory(extra_env=worker_env(smtp_server))

    assert services.publish_issue(issue=web) is None
    # The worker is alive and working: the next issue arrives, the web one never.
    wait_until_done(services.publish_issue(issue=emailed))

    web.refresh_from_db()
    assert web.status == Issue.Status.PUBLISHED
    assert not Send.objects.filter(issue=web).exists()
    assert set(by_subject(smtp_server)) == {"Emailed after it"}
    assert len(smtp_server.messages) == 25


def test_two_newsletters_each_subscriber_gets_only_theirs(
    celery_worker_factory, smtp_server
):
    monthly = Newsletter.default()
    news = Newsletter.objects.create(
        name="Announcements", slug="announcements", join_by_default=False
    )
    readers = make_subscribers(30)
    ids = [s.pk for s in readers]
    # 0-9 monthly only, 10-19 both, 20-29 announcements only.
    Subscription.join(
        Subscriber.objects.filter(pk__in=ids[10:]).values("pk"),
        Newsletter.objects.filter(pk=news.pk).values("pk"),
    )
    Subscription.objects.filter(subscriber_id__in=ids[20:], newsletter=monthly).delete()
    first = IssueFactory(title="The monthly issue", newsletter=monthly)
    second = IssueFactory(title="An announcement", newsletter=news)
    celery_worker_factory(extra_env=worker_env(smtp_server))

    wait_until_done(services.publish_issue(issue=first))
    wait_until_done(services.publish_issue(issue=second))

    received = by_subject(smtp_server)
    emails = [s.email for s in readers]
    assert set(received["The monthly issue"]) == set(emails[:20])
    assert set(received["An announcement"]) == set(emails[10:])
    assert all(set(c.values()) == {1} for c in received.values())


def test_leaving_the_newsletter_after_the_freeze_skips_the_email(
    celery_worker_factory, smtp_server
):
    readers = make_subscribers(20)
    issue = IssueFactory(title="Frozen, then left")
    send = Send.objects.create(issue=issue)
    delivery.freeze_audience(send=send)
    assert Delivery.objects.filter(send=send).count() == 20
    leavers = readers[:5]
    Subscription.objects.filter(subscriber__in=leavers).delete()
    celery_worker_factory(extra_env=worker_env(smtp_server))

    tasks.start_send.delay(send.pk)
    send = wait_until_done(send)

    received = Counter(smtp_server.recipients())
    assert set(received) == {s.email for s in readers[5:]}
    skipped = Delivery.objects.filter(send=send, status=Delivery.Status.SKIPPED)
    assert {d.email for d in skipped} == {s.email for s in leavers}
    wait_for(lambda: send.refresh_from_db() or send.skipped_count == 5, timeout=30)
