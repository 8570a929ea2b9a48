"""A Stripe event that arrives while the broker is down is still applied.

The broker is made unreachable for real (Celery pointed at a closed port, eager
off) while Stripe's signed webhook arrives; then the broker comes back and the
reconciler Celery beat runs every minute applies the event, so the membership ends
as Stripe has it.
"""

import socket
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from newsletter.celery import app
from subscribers.billing import tasks
from subscribers.billing.models import Membership, StripeEvent
from subscribers.models import Subscriber
from tests.billing.conftest import deliver, tier
from tests.billing.stripe_fake import fake_stripe, make_event, stripe_settings
from tests.factories.subscribers import SubscriberFactory

# The billing tests' fixtures: the local Stripe, its settings, a tier, a signed POST.
__all__ = ["deliver", "fake_stripe", "stripe_settings", "tier"]

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker(settings):
    """Switch the broker off and on again, as an outage of Redis would."""
    saved = (app.conf.broker_url, app.conf.task_always_eager)

    class Broker:
        def down(self) -> None:
            url = f"redis://127.0.0.1:{_closed_port()}/0"
            settings.CELERY_BROKER_URL = url
            settings.CELERY_TASK_ALWAYS_EAGER = False
            app.conf.broker_url = url
            app.conf.task_always_eager = False
            app.close()  # drop pooled connections to the old broker

        def up(self) -> None:
            settings.CELERY_BROKER_URL = saved[0]
            settings.CELERY_TASK_ALWAYS_EAGER = True
            app.conf.broker_url, app.conf.task_always_eager = saved[0], True
            app.close()

    yield Broker()
    app.conf.broker_url, app.conf.task_always_eager = saved
    app.close()


def _checkout(fake_stripe, tier, subscriber) -> dict:
    """A signed-in subscriber's Checkout, paid at Stripe; returns the session."""
    from subscribers.billing import services

    session = services.create_checkout_session(
        tier=tier,
        interval="month",
        subscriber=subscriber,
        signed_in=True,
        success_url="http://testserver/billing/success/",
        cancel_url="http://testserver/billing/cancel/",
    )
    fake_stripe.complete_checkout(session["id"])
    return fake_stripe.session_object(session["id"])


def _a_minute_passes() -> None:
    StripeEvent.objects.update(
        received_at=timezone.now() - timedelta(minutes=2),
        retry_at=timezone.now() - timedelta(minutes=1),
    )


def test_a_checkout_completed_while_the_broker_is_down_starts_the_membership(
    fake_stripe, stripe_settings, tier, deliver, broker
):
    subscriber = SubscriberFactory(email="ada@example.org")
    session = _checkout(fake_stripe, tier, subscriber)
    event = make_event("checkout.session.completed", session)

    broker.down()
    first = deliver(event)
    again = deliver(event)  # Stripe retries: the event is still waiting

    assert first.status_code == 200 and again.status_code == 200
    stored = StripeEvent.objects.get()
    assert stored.status == StripeEvent.Status.RECEIVED
    assert not Membership.objects.filter(subscriber=subscriber).exists()

    broker.up()
    _a_minute_passes()
    tasks.reconcile_stripe_events.delay()

    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "active" and membership.has_paid_access()
    assert membership.stripe_subscription_id == session["subscription"]
    assert StripeEvent.objects.get().status == StripeEvent.Status.PROCESSED


def test_a_cancellation_while_the_broker_is_down_ends_the_membership(
    fake_stripe, stripe_settings, tier, deliver, broker, smtp_settings
):
    subscriber = SubscriberFactory(email="ada@example.org")
    session = _checkout(fake_stripe, tier, subscriber)
    deliver(make_event("checkout.session.completed", session))
    assert Membership.objects.get(subscriber=subscriber).has_paid_access()
    canceled = fake_stripe.set_subscription(session["subscription"], status="canceled")

    broker.down()
    response = deliver(make_event("customer.subscription.deleted", canceled))

    assert response.status_code == 200
    assert Membership.objects.get(subscriber=subscriber).has_paid_access()

    broker.up()
    _a_minute_passes()
    tasks.reconcile_stripe_events.delay()

    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "canceled" and not membership.has_paid_access()
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert subjects.count("Your Supporter membership has ended") == 1


def test_stripe_retrying_an_event_still_waiting_applies_it(
    fake_stripe, stripe_settings, tier, deliver, broker
):
    subscriber = SubscriberFactory(email="ada@example.org")
    event = make_event(
        "checkout.session.completed", _checkout(fake_stripe, tier, subscriber)
    )
    broker.down()
    deliver(event)

    broker.up()
    again = deliver(event)

    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True, "queued": True}
    assert Membership.objects.get(subscriber=subscriber).has_paid_access()
    assert Subscriber.objects.get(pk=subscriber.pk).status == Subscriber.Status.ACTIVE


def test_an_event_that_cannot_be_applied_fails_once_and_is_not_queued_forever(
    stripe_settings, deliver, django_capture_on_commit_callbacks
):
    from subscribers.billing import services

    # Signed and well-formed, but its subscription has no id: no retry can help.
    event = make_event("customer.subscription.updated", {"object": "subscription"})
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(event).status_code == 200

    stored = StripeEvent.objects.get(event_id=event["id"])
    assert stored.status == StripeEvent.Status.FAILED
    assert "KeyError" in stored.error
    later = timezone.now() + timedelta(hours=1)
    assert services.requeue_stuck_stripe_events(now=later) == 0


def _stored(n: int, **fields) -> StripeEvent:
    return StripeEvent.objects.create(
        event_id=f"evt_stuck_{n}",
        type="invoice.paid",
        object_id=f"in_{n}",
        created_at=timezone.now(),
        payload=make_event("invoice.paid", {"id": f"in_{n}"}),
        **fields,
    )


@pytest.mark.django_db  # callbacks captured inside the test's transaction
def test_the_reconciler_requeues_only_stuck_events_a_capped_number_per_run(
    django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    from subscribers.billing import services

    now = timezone.now()
    old = now - timedelta(minutes=5)
    stuck = [_stored(n, retry_at=old) for n in range(5)]
    _stored(10, retry_at=now + timedelta(minutes=5))  # a retry is due later
    _stored(11, retry_at=old, status=StripeEvent.Status.PROCESSED)
    _stored(12, retry_at=old, status=StripeEvent.Status.FAILED)
    fresh = _stored(13)  # just arrived: its own task is on its way

    with (
        django_capture_on_commit_callbacks() as queued,
        django_assert_max_num_queries(4),
    ):
        first = services.requeue_stuck_stripe_events(now=now, limit=3)
    with django_capture_on_commit_callbacks() as queued_again:
        second = services.requeue_stuck_stripe_events(now=now, limit=3)

    assert (first, second) == (3, 2)
    assert len(queued) == 3 and len(queued_again) == 2
    requeued = StripeEvent.objects.filter(pk__in=[e.pk for e in stuck])
    assert all(e.retry_at > now for e in requeued)
    fresh.refresh_from_db()
    assert fresh.retry_at > now
    # Nothing is stuck any more until the new retry time passes.
    with django_capture_on_commit_callbacks() as none:
        assert services.requeue_stuck_stripe_events(now=now, limit=3) == 0
    assert none == []


def test_the_reconciler_runs_every_minute_on_beat():
    entry = next(
        e
        for e in django_settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "subscribers.billing.tasks.reconcile_stripe_events"
    )

    assert entry["schedule"] == 60
