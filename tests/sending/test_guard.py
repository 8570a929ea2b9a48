"""The deliverability guard: its rule, its counters, resuming, the panel, permissions.

The ends through a real worker and a real SMTP server, and a real webhook posted
while a send goes out, are in test_guard_worker.py.
"""

import base64
import importlib
import json
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from issues.sending import guard, services
from issues.sending.guard import Figures, Limits, verdict
from issues.sending.models import Delivery, EmailEvent, Send
from subscribers.sessions import SESSION_KEY
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db

LIMITS = Limits(complaint_rate=0.003, bounce_rate=0.05, min_sample=200)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sending"
WEBHOOK = "/email/events/postmark/tracking/"


# --- the rule -------------------------------------------------------------------------


def test_the_defaults_are_gmails_complaint_limit_and_five_percent_bounces(settings):
    assert Limits.from_settings() == LIMITS


def test_a_single_early_complaint_on_a_small_send_does_not_pause():
    # 1 in 20 is 5 %, far above 0.3 %, but 20 emails say nothing yet.
    assert verdict(Figures(accepted=20, complaints=1), LIMITS) is None
    assert verdict(Figures(accepted=199, complaints=1), LIMITS) is None


def test_complaints_above_the_limit_pause_with_the_rate_the_limit_and_what_to_do():
    reason = verdict(Figures(accepted=400, complaints=2), LIMITS)
    assert reason is not None
    assert reason.startswith("Complaint rate 0.50 % (2 spam complaints out of 400")
    assert "above the 0.30 % limit" in reason
    assert "Check where this list came from" in reason
    assert "resume from the send panel" in reason


def test_a_rate_at_the_limit_has_not_crossed_it():
    assert verdict(Figures(accepted=1000, complaints=3), LIMITS) is None  # 0.30 %
    assert verdict(Figures(accepted=999, complaints=3), LIMITS) is not None
    assert verdict(Figures(accepted=190, refused=10), LIMITS) is None  # 5.00 %
    assert verdict(Figures(accepted=189, refused=11), LIMITS) is not None


def test_hard_bounces_count_both_refusals_and_reported_bounces_out_of_attempts():
    figures = Figures(accepted=180, refused=20, reported_bounces=5)
    assert figures.attempted == 200 and figures.hard_bounces == 25
    reason = verdict(figures, LIMITS)
    assert reason is not None
    assert reason.startswith("Hard-bounce rate 12.50 % (25 addresses refused for good")
    assert "out of 200 attempted" in reason and "above the 5.00 % limit" in reason
    # Refusals are attempts: 20 refused of 150 tried is not yet a sample.
    assert verdict(Figures(accepted=130, refused=20), LIMITS) is None


def test_after_a_resume_only_new_complaints_or_bounces_pause_again():
    resumed = Figures(accepted=400, complaints=2, complaints_at_resume=2)
    assert verdict(resumed, LIMITS) is None
    assert verdict(Figures(accepted=410, complaints=3, complaints_at_resume=2), LIMITS)
    bounced = Figures(accepted=180, refused=20, bounces_at_resume=20)
    assert verdict(bounced, LIMITS) is None
    assert verdict(Figures(accepted=181, refused=21, bounces_at_resume=20), LIMITS)


def test_a_limit_of_one_turns_the_guard_off():
    off = Limits(complaint_rate=1, bounce_rate=1, min_sample=200)
    assert verdict(Figures(accepted=200, complaints=200), off) is None
    assert verdict(Figures(accepted=0, refused=200), off) is None


# --- counting and pausing -------------------------------------------------------------


def sending(
    total: int, *, sent: int = 0, status=Send.Status.SENDING, start: int = 0
) -> Send:
    """A send of total recipients, the first `sent` accepted (and counted)."""
    subscribers = make_subscribers(total, start=start)
    issue = IssueFactory(published=True)
    send = Send.objects.create(
        issue=issue,
        status=status,
        total=total,
        started_at=timezone.now(),
        accepted_count=sent,
    )
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(
            send=send,
            subscriber=subscriber,
            email=subscriber.email,
            status=Delivery.Status.SENT if n < sent else Delivery.Status.QUEUED,
            sent_at=now if n < sent else None,
            message_id=f"<m{n}.{send.pk}@quire.test>" if n < sent else "",
        )
        for n, subscriber in enumerate(subscribers)
    )
    return send


def test_counting_past_the_limit_pauses_a_running_send_with_the_reason():
    send = sending(500, sent=300)
    assert guard.count(send_id=send.pk, complaints=1) is not None  # 1 of 300
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    assert send.complaint_count == 1
    assert send.paused_reason.startswith("Complaint rate 0.33 %")
    # Nothing else changed: the queued rows wait for the resume.
    assert Delivery.objects.filter(send=send, status="queued").count() == 200


def test_a_send_with_nothing_left_to_hold_back_is_not_paused():
    send = sending(300, sent=300)
    assert guard.count(send_id=send.pk, complaints=5) is None
    send.refresh_from_db()
    assert send.status == Send.Status.SENDING and send.complaint_count == 5


def test_a_finished_or_paused_send_keeps_counting_but_is_not_touched():
    done = sending(500, sent=300, status=Send.Status.DONE)
    assert guard.count(send_id=done.pk, complaints=3) is None
    done.refresh_from_db()
    assert done.status == Send.Status.DONE and done.complaint_count == 3
    assert done.paused_reason == ""
    paused = sending(500, sent=300, status=Send.Status.PAUSED, start=500)
    guard.count(send_id=paused.pk, complaints=3)
    paused.refresh_from_db()
    assert paused.paused_reason == "" and paused.complaint_count == 3


def test_resuming_does_not_pause_again_on_the_same_figures(
    django_capture_on_commit_callbacks,
):
    send = sending(1000, sent=300)
    guard.count(send_id=send.pk, complaints=2)
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED

    with django_capture_on_commit_callbacks() as callbacks:
        send = services.resume_send(send=send)
    assert send.status == Send.Status.SENDING and send.paused_reason == ""
    assert send.complaints_at_resume == 2 and callbacks
    # More accepted emails, no new complaint: the rate is still 0.62 %, no pause.
    assert guard.count(send_id=send.pk, accepted=20) is None
    send.refresh_from_db()
    assert send.status == Send.Status.SENDING
    # A new complaint while the rate is above the limit pauses it again.
    assert guard.count(send_id=send.pk, complaints=1) is not None
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    assert send.paused_reason.startswith("Complaint rate 0.94 % (3 spam complaints")


def test_crossing_the_minimum_sample_judges_the_rate_already_there():
    send = sending(500, sent=150)
    guard.count(send_id=send.pk, refused=30)  # 30 of 180 attempted: too few yet
    send.refresh_from_db()
    assert send.status == Send.Status.SENDING
    guard.count(send_id=send.pk, accepted=20)  # 200 attempted, 15 %
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    assert send.paused_reason.startswith("Hard-bounce rate 15.00 %")


# --- the provider's events ------------------------------------------------------------


@pytest.fixture
def webhook(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}

    def post(client, name: str, **changes):
        payload = json.loads((FIXTURES / f"{name}.json").read_text())
        payload.update(changes)
        auth = base64.b64encode(b"hook:s3cret").decode()
        response = client.post(
            WEBHOOK,
            json.dumps(payload),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {auth}",
        )
        assert response.status_code == 200
        return response

    return post


def test_a_complaint_reported_twice_counts_once(client, webhook):
    send = sending(1000, sent=900)
    row = Delivery.objects.filter(send=send, status="sent").first()
    for event_id in (1, 2):  # the same complaint, sent again under another id
        webhook(
            client,
            "postmark-complaint",
            ID=event_id,
            Email=row.email,
            MessageID=row.message_id,
        )
    assert EmailEvent.objects.filter(event_type="complained").count() == 2
    send.refresh_from_db()
    assert send.complaint_count == 1
    row.refresh_from_db()
    assert row.complained_at is not None
    assert send.status == Send.Status.SENDING  # 1 of 900 is 0.11 %


def test_a_reported_bounce_counts_once_and_not_for_an_address_refused_while_sending(
    client, webhook
):
    send = sending(1000, sent=900)
    accepted = Delivery.objects.filter(send=send, status="sent").first()
    refused = Delivery.objects.filter(send=send, status="queued").first()
    Delivery.objects.filter(pk=refused.pk).update(
        status=Delivery.Status.BOUNCED, message_id="<refused@quire.test>"
    )
    for event_id, row in ((1, accepted), (2, accepted), (3, refused)):
        webhook(
            client,
            "postmark-hard-bounce",
            ID=event_id,
            Email=row.email,
            MessageID=row.message_id,
        )
    send.refresh_from_db()
    assert send.reported_bounce_count == 1 and send.refused_count == 0
    accepted.refresh_from_db()
    assert accepted.status == Delivery.Status.BOUNCED


def test_complaints_arriving_by_webhook_pause_the_send(client, webhook):
    send = sending(1000, sent=600)
    rows = list(Delivery.objects.filter(send=send, status="sent")[:2])
    for event_id, row in enumerate(rows):
        webhook(
            client,
            "postmark-complaint",
            ID=event_id,
            Email=row.email,
            MessageID=row.message_id,
        )
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED  # 2 of 600: 0.33 %
    assert send.paused_reason.startswith("Complaint rate 0.33 % (2 spam complaints")


# --- the panel ------------------------------------------------------------------------


def staff_member(*codenames: str, name: str = "author"):
    user = get_user_model().objects.create_user(
        name, f"{name}@example.org", "pw-for-tests-only", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def paused_by_the_guard() -> Send:
    send = sending(1000, sent=400)
    guard.count(send_id=send.pk, complaints=3)
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    return send


def test_the_panel_shows_both_rates_with_their_limits_and_the_reason():
    send = paused_by_the_guard()
    guard.count(send_id=send.pk, refused=4)
    client = staff_member("view_issue", "change_issue")

    page = client.get(f"/admin/issues/issue/{send.issue_id}/change/").content.decode()
    assert 'data-field="complaint_rate">0.75 %<' in page
    assert 'data-field="complaint_limit">0.30 %<' in page
    assert 'data-field="bounce_rate">0.99 %<' in page  # 4 of 404 attempted
    assert 'data-field="bounce_limit">5.00 %<' in page
    assert "out of the emails the mail server accepted" in page
    assert "Paused by Quire:" in page and "Complaint rate 0.75 %" in page

    status = client.get(f"/admin/issues/issue/{send.issue_id}/send-status/").json()
    assert status["complaint_rate"] == "0.75 %" and status["complaints"] == 3
    assert status["accepted"] == 400 and status["complaints_over"] is True
    assert status["hard_bounces"] == 4 and status["attempted"] == 404
    assert status["bounces_over"] is False
    assert status["paused_reason"].startswith("Complaint rate 0.75 %")


# --- who may resume -------------------------------------------------------------------


def state(send: Send) -> tuple:
    send.refresh_from_db()
    return (
        send.status,
        send.paused_reason,
        send.complaints_at_resume,
        send.bounces_at_resume,
    )


def resume(client: Client, send: Send):
    return client.post(f"/admin/issues/issue/{send.issue_id}/send-control/resume/")


def test_an_outsider_cannot_resume_a_send_the_guard_paused(
    django_capture_on_commit_callbacks,
):
    send = paused_by_the_guard()
    before = state(send)
    with django_capture_on_commit_callbacks() as callbacks:
        response = resume(Client(), send)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert state(send) == before and callbacks == []


def test_a_signed_in_subscriber_cannot_resume_it(django_capture_on_commit_callbacks):
    send = paused_by_the_guard()
    before = state(send)
    reader = Client()
    session = reader.session
    session[SESSION_KEY] = SubscriberFactory(email="someone@example.net").pk
    session.save()
    with django_capture_on_commit_callbacks() as callbacks:
        response = resume(reader, send)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert state(send) == before and callbacks == []


def test_staff_who_may_only_view_issues_cannot_resume_it(
    django_capture_on_commit_callbacks,
):
    send = paused_by_the_guard()
    before = state(send)
    viewer = staff_member("view_issue", "view_send", name="viewer")
    with django_capture_on_commit_callbacks() as callbacks:
        response = resume(viewer, send)
    assert response.status_code == 403
    assert state(send) == before and callbacks == []
    # A GET changes nothing either, even for an author who may.
    author = staff_member("view_issue", "change_issue")
    response = author.get(f"/admin/issues/issue/{send.issue_id}/send-control/resume/")
    assert response.status_code == 405 and state(send) == before


def test_the_author_resumes_it_from_the_panel(django_capture_on_commit_callbacks):
    send = paused_by_the_guard()
    author = staff_member("view_issue", "change_issue")
    with django_capture_on_commit_callbacks() as callbacks:
        response = resume(author, send)
    assert response.status_code == 302
    assert state(send) == (Send.Status.SENDING, "", 3, 0)
    assert callbacks  # its batch tasks are queued


def test_sends_made_before_the_guard_get_their_counters_from_their_deliveries():
    migration = importlib.import_module(
        "issues.sending.migrations.0005_deliverability_guard"
    )
    send = sending(10, sent=6)
    Send.objects.filter(pk=send.pk).update(accepted_count=0)
    first, second = Delivery.objects.filter(send=send, status="sent").order_by("pk")[:2]
    refused = Delivery.objects.filter(send=send, status="queued").first()
    Delivery.objects.filter(pk=refused.pk).update(status=Delivery.Status.BOUNCED)
    Delivery.objects.filter(pk=first.pk).update(status=Delivery.Status.BOUNCED)
    EmailEvent.objects.create(
        event_id="old-complaint",
        event_type="complained",
        email=second.email,
        message_id=second.message_id,
        timestamp=timezone.now(),
    )

    migration.count_what_was_sent(django_apps, None)

    send.refresh_from_db()
    assert send.accepted_count == 6  # 5 sent, 1 accepted and bounced later
    assert send.refused_count == 1 and send.reported_bounce_count == 1
    assert send.complaint_count == 1
    second.refresh_from_db()
    assert second.complained_at is not None
