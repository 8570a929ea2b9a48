from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Permission
from django.test import RequestFactory
from django.utils import timezone
from django_otp.middleware import OTPMiddleware

from issues.access import paid_subscribers_q, request_has_paid_access
from subscribers.models import Subscriber
from subscribers.sessions import SESSION_KEY
from tests.factories.billing import MembershipFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY = timedelta(days=1)
PAST_DUE = "past_due"
COMP = "complimentary"
UNTIL = "complimentary_until"
CASES = [
    ("active", {"status": "active"}, True),
    ("trialing", {"status": "trialing"}, True),
    ("past due yesterday", {"status": PAST_DUE, "past_due_since": NOW - DAY}, True),
    ("past due 8 days", {"status": PAST_DUE, "past_due_since": NOW - 8 * DAY}, False),
    ("canceled", {"status": "canceled"}, False),
    ("unpaid", {"status": "unpaid"}, False),
    ("incomplete", {"status": "incomplete"}, False),
    ("complimentary", {"complimentary": True}, True),
    ("comp. until next week", {COMP: True, UNTIL: NOW + 7 * DAY}, True),
    ("complimentary ended", {COMP: True, UNTIL: NOW - DAY}, False),
    ("canceled but complimentary", {"status": "canceled", "complimentary": True}, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "fields", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_who_has_paid_access(label, fields, expected):
    subscriber = SubscriberFactory()
    membership = MembershipFactory(subscriber=subscriber, **fields)

    assert membership.has_paid_access() is expected
    assert Subscriber.objects.filter(paid_subscribers_q()).exists() is expected


def test_the_grace_period_is_a_setting(settings):
    settings.BILLING_GRACE_PERIOD_DAYS = 10
    membership = MembershipFactory(
        status="past_due", past_due_since=timezone.now() - timedelta(days=8)
    )

    assert membership.has_paid_access()
    assert Subscriber.objects.filter(paid_subscribers_q()).count() == 1


def test_paid_subscribers_q_selects_exactly_the_members_with_access_in_one_query(
    django_assert_num_queries,
):
    members = [SubscriberFactory() for _ in range(3)]
    for subscriber, status in zip(
        members, ["active", "canceled", "trialing"], strict=True
    ):
        MembershipFactory(subscriber=subscriber, status=status)
    SubscriberFactory()  # free, no membership

    with django_assert_num_queries(1):
        paid = set(Subscriber.objects.filter(paid_subscribers_q()))

    assert paid == {members[0], members[2]}


def _request(session=None, user=None):
    request = RequestFactory().get("/")
    request.session = session if session is not None else {}
    request.user = user or AnonymousUser()
    # As on every real request: django-otp tells whether the session passed a code.
    OTPMiddleware(lambda request: None)(request)
    return request


def test_request_access_for_signed_out_free_paying_and_staff():
    free = SubscriberFactory()
    paying = SubscriberFactory()
    MembershipFactory(subscriber=paying, status="active")
    staff = get_user_model().objects.create_user("ed", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_issue"))
    clerk = get_user_model().objects.create_user("clerk", is_staff=True)

    assert request_has_paid_access(_request()) is False
    assert request_has_paid_access(_request({SESSION_KEY: free.pk})) is False
    assert request_has_paid_access(_request({SESSION_KEY: paying.pk})) is True
    assert request_has_paid_access(_request(user=staff)) is True
    # Staff who may not view issues in the admin read as anyone else.
    assert request_has_paid_access(_request(user=clerk)) is False
