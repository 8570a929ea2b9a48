import json
import time
from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from issues.access import paid_subscribers_q
from subscribers.billing.models import Membership, StripeEvent
from subscribers.models import Subscriber
from tests.billing.stripe_fake import invoice_for, make_event, sign
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_checkout_completed_makes_a_paying_member_and_confirms_the_address(
    paid_member, smtp_settings
):
    subscriber, subscription = paid_member()

    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "active"
    assert membership.stripe_subscription_id == subscription["id"]
    assert membership.stripe_customer_id == subscription["customer"]
    assert membership.tier.slug == "supporter"
    assert membership.amount == 800 and membership.interval == "month"
    assert membership.current_period_end is not None
    assert membership.has_paid_access()
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert subjects == ["Welcome to Supporter: thank you for your support"]
    assert smtp_settings.messages[0].message["To"] == subscriber.email


def test_a_pending_reader_who_pays_is_confirmed(paid_member):
    subscriber, _ = paid_member()
    Subscriber.objects.filter(pk=subscriber.pk).update(status="pending")
    other, _ = paid_member(email="new@example.org")

    assert Subscriber.objects.get(pk=other.pk).status == Subscriber.Status.ACTIVE


def _event_count_and_state():
    return StripeEvent.objects.count(), list(
        Membership.objects.values_list("status", flat=True)
    )


def test_a_bad_signature_is_refused_with_no_effect(
    fake_stripe, stripe_settings, deliver, paid_member
):
    subscriber, subscription = paid_member()
    before = _event_count_and_state()
    canceled = fake_stripe.set_subscription(subscription["id"], status="canceled")
    event = make_event("customer.subscription.deleted", canceled)
    body = json.dumps(event)

    response = deliver(event, header=sign(body, secret="whsec_someone_else"))

    assert response.status_code == 400
    assert _event_count_and_state() == before


def test_an_old_timestamp_is_refused_with_no_effect(
    fake_stripe, stripe_settings, deliver, paid_member
):
    subscriber, subscription = paid_member()
    before = _event_count_and_state()
    canceled = fake_stripe.set_subscription(subscription["id"], status="canceled")

    response = deliver(
        make_event("customer.subscription.deleted", canceled),
        timestamp=int(time.time()) - 301,
    )

    assert response.status_code == 400
    assert _event_count_and_state() == before


def test_a_reserialised_body_is_refused_with_no_effect(
    client, fake_stripe, stripe_settings, paid_member
):
    subscriber, subscription = paid_member()
    before = _event_count_and_state()
    canceled = fake_stripe.set_subscription(subscription["id"], status="canceled")
    body = json.dumps(make_event("customer.subscription.deleted", canceled))
    header = sign(body)
    # Same JSON, other bytes: the signature covers the exact body.
    reserialised = json.dumps(json.loads(body), indent=2, sort_keys=True)

    response = client.post(
        "/stripe/webhook/",
        data=reserialised,
        content_type="application/json",
        headers={"Stripe-Signature": header},
    )

    assert response.status_code == 400
    assert _event_count_and_state() == before


def test_a_missing_signature_or_secret_is_refused(client, settings, stripe_settings):
    body = json.dumps(make_event("invoice.paid", {"id": "in_1"}))
    assert (
        client.post(
            "/stripe/webhook/", data=body, content_type="application/json"
        ).status_code
        == 400
    )
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = client.post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign(body)},
    )
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_unknown_event_types_are_accepted_and_ignored(stripe_settings, deliver):
    response = deliver(
        make_event("customer.created", {"id": "cus_9", "object": "customer"})
    )

    assert response.status_code == 200
    assert response.json()["ignored"] is True
    assert StripeEvent.objects.count() == 0


def test_an_event_delivered_again_takes_effect_once(
    fake_stripe,
    stripe_settings,
    deliver,
    paid_member,
    smtp_settings,
    django_capture_on_commit_callbacks,
):
    subscriber, subscription = paid_member()
    failed = fake_stripe.set_subscription(subscription["id"], status="past_due")
    event = make_event("invoice.payment_failed", invoice_for(failed))

    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(event)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = deliver(event)

    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    assert callbacks == []
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert subjects.count("Your payment for Supporter did not go through") == 1


def test_subscription_deleted_before_checkout_completed_ends_canceled(
    fake_stripe, stripe_settings, tier, deliver, django_capture_on_commit_callbacks
):
    from subscribers.billing import services

    subscriber = SubscriberFactory()
    session = services.create_checkout_session(
        tier=tier, interval="month", subscriber=subscriber, signed_in=True,
        success_url="http://testserver/s/", cancel_url="http://testserver/c/",
    )  # fmt: skip
    subscription = fake_stripe.complete_checkout(session["id"])
    created = make_event("customer.subscription.created", subscription)
    completed = make_event(
        "checkout.session.completed", fake_stripe.session_object(session["id"])
    )
    canceled = fake_stripe.set_subscription(
        subscription["id"], status="canceled", ended_at=int(time.time())
    )
    deleted = make_event("customer.subscription.deleted", canceled)

    for event in (deleted, completed, created):
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(event).status_code == 200

    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "canceled"
    assert not membership.has_paid_access()
    assert not Subscriber.objects.filter(
        paid_subscribers_q(), pk=subscriber.pk
    ).exists()


def test_events_in_any_order_end_in_stripes_current_state(
    fake_stripe, stripe_settings, tier, deliver, django_capture_on_commit_callbacks
):
    from subscribers.billing import services

    subscriber = SubscriberFactory()
    session = services.create_checkout_session(
        tier=tier, interval="month", subscriber=subscriber, signed_in=True,
        success_url="http://testserver/s/", cancel_url="http://testserver/c/",
    )  # fmt: skip
    trialing = fake_stripe.complete_checkout(session["id"], status="trialing")
    events = [make_event("customer.subscription.created", trialing)]
    events.append(
        make_event(
            "checkout.session.completed", fake_stripe.session_object(session["id"])
        )
    )
    active = fake_stripe.set_subscription(trialing["id"], status="active")
    events.append(make_event("invoice.paid", invoice_for(active)))
    events.append(
        make_event(
            "customer.subscription.updated",
            fake_stripe.set_subscription(trialing["id"], cancel_at_period_end=True),
        )
    )

    for event in reversed(events):
        with django_capture_on_commit_callbacks(execute=True):
            deliver(event)

    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "active"
    assert membership.cancel_at_period_end is True


def test_payment_failed_makes_a_past_due_member_with_access_only_inside_the_grace(
    fake_stripe,
    stripe_settings,
    deliver,
    paid_member,
    smtp_settings,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.BILLING_GRACE_PERIOD_DAYS = 7
    subscriber, subscription = paid_member()
    past_due = fake_stripe.set_subscription(subscription["id"], status="past_due")

    with django_capture_on_commit_callbacks(execute=True):
        deliver(make_event("invoice.payment_failed", invoice_for(past_due)))

    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "past_due"
    assert membership.has_paid_access()
    assert Subscriber.objects.filter(paid_subscribers_q(), pk=subscriber.pk).exists()
    failed_mail = [
        m
        for m in smtp_settings.messages
        if "did not go through" in m.message["Subject"]
    ]
    assert len(failed_mail) == 1
    assert "https://invoice.stripe.test/i/in_1" in failed_mail[0].raw.decode()

    in_eight_days = timezone.now() + timedelta(days=8)
    assert membership.has_paid_access(now=in_eight_days) is False
    Membership.objects.filter(pk=membership.pk).update(
        past_due_since=timezone.now() - timedelta(days=8)
    )
    membership.refresh_from_db()
    assert not membership.has_paid_access()
    assert not Subscriber.objects.filter(
        paid_subscribers_q(), pk=subscriber.pk
    ).exists()


def test_each_failed_attempt_sends_one_email_and_payment_restores_access(
    fake_stripe,
    stripe_settings,
    deliver,
    paid_member,
    smtp_settings,
    django_capture_on_commit_callbacks,
):
    subscriber, subscription = paid_member()
    past_due = fake_stripe.set_subscription(subscription["id"], status="past_due")
    for attempt in (1, 2):
        with django_capture_on_commit_callbacks(execute=True):
            deliver(
                make_event(
                    "invoice.payment_failed",
                    invoice_for(past_due, attempt_count=attempt),
                )
            )
    paid = fake_stripe.set_subscription(subscription["id"], status="active")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(make_event("invoice.paid", invoice_for(paid)))

    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert subjects.count("Your payment for Supporter did not go through") == 2
    assert subjects.count("Welcome to Supporter: thank you for your support") == 1
    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "active" and membership.past_due_since is None


def test_a_canceled_subscription_ends_access_and_sends_one_goodbye(
    fake_stripe,
    stripe_settings,
    deliver,
    paid_member,
    smtp_settings,
    django_capture_on_commit_callbacks,
):
    subscriber, subscription = paid_member()
    canceled = fake_stripe.set_subscription(
        subscription["id"], status="canceled", ended_at=int(time.time())
    )
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            deliver(make_event("customer.subscription.deleted", canceled))

    membership = Membership.objects.get(subscriber=subscriber)
    assert membership.status == "canceled"
    assert membership.canceled_at is not None
    assert not membership.has_paid_access()
    subjects = [m.message["Subject"] for m in smtp_settings.messages]
    assert subjects.count("Your Supporter membership has ended") == 1


def test_stripe_unreachable_keeps_the_event_for_a_retry(
    fake_stripe,
    stripe_settings,
    deliver,
    paid_member,
    django_capture_on_commit_callbacks,
):
    from subscribers.billing.tasks import process_stripe_event

    subscriber, subscription = paid_member()
    fake_stripe.set_subscription(subscription["id"], status="canceled")
    fake_stripe.down = True

    # The event's task is queued, not run: run eagerly, Celery would also run every
    # retry at once, one after another, instead of minutes apart.
    with django_capture_on_commit_callbacks() as callbacks:
        response = deliver(
            make_event(
                "customer.subscription.deleted",
                fake_stripe.subscriptions[subscription["id"]],
            )
        )
    assert response.status_code == 200
    assert len(callbacks) == 1
    event = StripeEvent.objects.get(type="customer.subscription.deleted")

    # The task's first attempt, as a worker runs it: it asks Celery for a retry,
    # which, called outside a worker, raises Stripe's error.
    before = timezone.now()
    with pytest.raises(stripe.APIError):
        process_stripe_event(event.pk)

    event.refresh_from_db()
    assert event.status == StripeEvent.Status.RECEIVED
    assert "upstream down" in event.error
    # The reconciler leaves it to the task's retry (in 5 s) for a minute more.
    assert event.retry_at >= before + timedelta(seconds=65)
    assert Membership.objects.get(subscriber=subscriber).status == "active"


def test_billing_emails_come_from_the_publications_sender(paid_member, smtp_settings):
    from newsletter.models import Publication

    publication = Publication.load()
    publication.sender_name = "Ada at Gradient Notes"
    publication.sender_email = "ada@gradient.example"
    publication.save()

    paid_member()

    assert smtp_settings.messages[0].message["From"] == (
        "Ada at Gradient Notes <ada@gradient.example>"
    )
