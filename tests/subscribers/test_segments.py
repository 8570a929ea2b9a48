"""Segments resolve to one set-based query: each condition alone, then together."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from issues.analytics.models import Activity
from issues.models import Issue
from issues.sending.models import Delivery, Send
from newsletter.models import Newsletter
from subscribers import segments
from subscribers.billing.models import Membership
from subscribers.models import Label, Segment, Subscriber, Subscription
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


def matched(segment: Segment) -> set[str]:
    return set(segments.segment_subscribers(segment).values_list("email", flat=True))


def test_an_empty_segment_matches_everyone():
    a, b = SubscriberFactory(), SubscriberFactory()
    assert matched(Segment.objects.create(name="All")) == {a.email, b.email}


def test_labels_match_anyone_with_at_least_one_of_them_once():
    ml, nlp, other = (Label.objects.create(name=n) for n in ("ml", "nlp", "other"))
    both, one, neither, none = (SubscriberFactory() for _ in range(4))
    both.labels.add(ml, nlp)
    one.labels.add(nlp)
    neither.labels.add(other)
    segment = Segment.objects.create(name="Readers of ML")
    segment.labels.add(ml, nlp)

    assert matched(segment) == {both.email, one.email}
    # Two labels, one row: an EXISTS, not a join that repeats them.
    assert segments.segment_subscribers(segment).count() == 2


def test_newsletter_matches_its_subscribers_only():
    other = Newsletter.objects.create(
        name="Announcements", slug="announcements", join_by_default=False
    )
    on_other, on_default = SubscriberFactory(), SubscriberFactory()
    Subscription.join(
        Subscriber.objects.filter(pk=on_other.pk).values("pk"),
        Newsletter.objects.filter(pk=other.pk).values("pk"),
    )
    segment = Segment.objects.create(name="Announced", newsletter=other)
    assert matched(segment) == {on_other.email}
    assert on_default.email not in matched(segment)


def test_signup_source_matches_that_source_only():
    imported = SubscriberFactory(source=Subscriber.Source.IMPORT)
    SubscriberFactory(source=Subscriber.Source.FORM)
    segment = Segment.objects.create(name="Imported", source=Subscriber.Source.IMPORT)
    assert matched(segment) == {imported.email}


def test_join_dates_are_on_or_after_and_before():
    old, mid, new = (SubscriberFactory() for _ in range(3))
    for subscriber, day in ((old, date(2024, 1, 10)), (mid, date(2025, 3, 1)),
                            (new, date(2026, 6, 1))):  # fmt: skip
        moment = timezone.make_aware(timezone.datetime(day.year, day.month, day.day, 9))
        Subscriber.objects.filter(pk=subscriber.pk).update(created=moment)
    segment = Segment.objects.create(
        name="2025", joined_after=date(2025, 3, 1), joined_before=date(2026, 6, 1)
    )
    # On the first day included, the day "before" excluded.
    assert matched(segment) == {mid.email}


def test_membership_free_paid_paying_and_complimentary():
    free = SubscriberFactory()
    lapsed = MembershipFactory(status=Membership.Status.CANCELED).subscriber
    paying = MembershipFactory(status=Membership.Status.ACTIVE).subscriber
    trial = MembershipFactory(status=Membership.Status.TRIALING).subscriber
    comp = MembershipFactory(complimentary=True).subscriber
    comp_over = MembershipFactory(
        complimentary=True, complimentary_until=timezone.now() - timedelta(days=1)
    ).subscriber

    def of(kind):
        return matched(Segment.objects.create(name=kind, membership=kind))

    assert of("free") == {free.email, lapsed.email, comp_over.email}
    assert of("paid") == {paying.email, trial.email, comp.email}
    assert of("paying") == {paying.email, trial.email}
    assert of("complimentary") == {comp.email}


def sent_issue(started_at, *, kind=Issue.Kind.ISSUE) -> Send:
    issue = IssueFactory(kind=kind) if kind != Issue.Kind.ISSUE else IssueFactory()
    return Send.objects.create(
        issue=issue, status=Send.Status.DONE, started_at=started_at
    )


def engage(send: Send, subscriber: Subscriber, *, human=True, click=False):
    delivery = Delivery.objects.create(
        send=send, subscriber=subscriber, email=subscriber.email, status="sent"
    )
    now = timezone.now()
    Activity.objects.create(
        delivery_id=delivery.pk,
        issue=send.issue,
        first_human_open=now if human and not click else None,
        first_human_click=now if human and click else None,
        first_machine_open=None if human else now,
    )


def test_engagement_is_a_human_open_or_click_in_the_last_n_issues():
    now = timezone.now()
    old, previous, last = (sent_issue(now - timedelta(days=d)) for d in (90, 60, 30))
    Send.objects.create(issue=IssueFactory(), status=Send.Status.PREPARING)
    opened_last, clicked_previous, opened_old, machine_only, silent = (
        SubscriberFactory() for _ in range(5)
    )
    engage(last, opened_last)
    engage(previous, clicked_previous, click=True)
    engage(old, opened_old)
    engage(last, machine_only, human=False)
    Delivery.objects.create(send=last, subscriber=silent, email=silent.email)

    two = Segment.objects.create(name="Two", engaged_in_last=2)
    one = Segment.objects.create(name="One", engaged_in_last=1)
    three = Segment.objects.create(name="Three", engaged_in_last=3)

    assert matched(one) == {opened_last.email}
    assert matched(two) == {opened_last.email, clicked_previous.email}
    assert matched(three) == {
        opened_last.email, clicked_previous.email, opened_old.email,
    }  # fmt: skip


def test_engagement_counts_issues_not_welcome_emails():
    now = timezone.now()
    issue = sent_issue(now - timedelta(days=10))
    welcome = sent_issue(now - timedelta(days=1), kind=Issue.Kind.WELCOME)
    reader, welcomed = SubscriberFactory(), SubscriberFactory()
    engage(issue, reader)
    engage(welcome, welcomed)
    segment = Segment.objects.create(name="Engaged", engaged_in_last=1)
    assert matched(segment) == {reader.email}


def test_every_condition_together_is_one_query():
    ml = Label.objects.create(name="ml")
    now = timezone.now()
    last = sent_issue(now - timedelta(days=1))
    fits = MembershipFactory(status=Membership.Status.ACTIVE).subscriber
    fits.labels.add(ml)
    engage(last, fits)
    unlabelled = MembershipFactory(status=Membership.Status.ACTIVE).subscriber
    engage(last, unlabelled)
    free = SubscriberFactory()
    free.labels.add(ml)
    engage(last, free)
    segment = Segment.objects.create(
        name="Engaged paying ML readers", membership="paying", engaged_in_last=3,
        newsletter=Newsletter.default(), source=Subscriber.Source.FORM,
        joined_after=date(2000, 1, 1),
    )  # fmt: skip
    segment.labels.add(ml)
    segment = Segment.objects.get(pk=segment.pk)
    query = segments.segment_subscribers(segment, Subscriber.objects.receiving())
    with CaptureQueriesContext(connection) as queries:
        emails = list(query.values_list("email", flat=True))
    assert emails == [fits.email]
    assert len(queries) == 1
    assert segments.segment_count(segment) == 1


def test_a_condition_no_app_provides_is_an_error_not_everyone():
    segment = Segment.objects.create(name="Engaged", engaged_in_last=2)
    saved = segments._conditions.pop("engagement")
    try:
        with pytest.raises(ImproperlyConfigured):
            segments.segment_q(segment)
    finally:
        segments.register_condition("engagement", saved)
