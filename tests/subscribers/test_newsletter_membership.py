"""Newsletter membership: new subscribers join the default newsletters, set-based,
and receiving() narrows to one newsletter's subscribers."""

import pytest

from newsletter.models import Newsletter
from subscribers.models import Subscriber, Subscription
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_a_new_subscriber_joins_the_newsletters_that_take_new_subscribers():
    first = Newsletter.default()
    announcements = Newsletter.objects.create(
        name="Announcements", slug="announcements", position=1
    )
    opt_in = Newsletter.objects.create(
        name="Rare", slug="rare", join_by_default=False, position=2
    )

    subscriber = SubscriberFactory()

    assert set(subscriber.newsletters.all()) == {first, announcements}
    assert opt_in not in subscriber.newsletters.all()


def test_receiving_a_newsletter_is_its_subscribers_only():
    first = Newsletter.default()
    other = Newsletter.objects.create(name="Other", slug="other", join_by_default=False)
    both = SubscriberFactory(status=Subscriber.Status.ACTIVE)
    only_first = SubscriberFactory(status=Subscriber.Status.ACTIVE)
    Subscription.join(
        Subscriber.objects.filter(pk=both.pk).values("pk"),
        Newsletter.objects.filter(pk=other.pk).values("pk"),
    )

    assert set(Subscriber.objects.receiving(newsletter=first.pk)) == {both, only_first}
    assert list(Subscriber.objects.receiving(newsletter=other.pk)) == [both]


def test_joining_twice_writes_each_pair_once():
    first = Newsletter.default()
    people = [SubscriberFactory() for _ in range(3)]
    ids = Subscriber.objects.filter(pk__in=[p.pk for p in people]).values("pk")

    written = Subscription.join(
        ids, Newsletter.objects.filter(pk=first.pk).values("pk")
    )

    assert written == 0  # they joined on creation already
    assert Subscription.objects.filter(newsletter=first).count() == 3
