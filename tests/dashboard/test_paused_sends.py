"""The dashboard: a send the deliverability guard paused, and the rates of sends
going out."""

import pytest
from django.utils import timezone

from issues.sending import guard
from issues.sending.models import Delivery, Send
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db


def going_out(title: str, *, total: int, accepted: int, start: int = 0) -> Send:
    issue = IssueFactory(title=title, published=True)
    send = Send.objects.create(
        issue=issue,
        status=Send.Status.SENDING,
        total=total,
        started_at=timezone.now(),
        sent_count=accepted,
        accepted_count=accepted,
    )
    Delivery.objects.bulk_create(
        Delivery(send=send, subscriber=s, email=s.email)
        for s in make_subscribers(total - accepted, start=start)
    )
    return send


def test_a_send_the_guard_paused_needs_attention_with_its_reason(admin_client):
    send = going_out("Too many bounces", total=1000, accepted=300)
    guard.count(send_id=send.pk, refused=40)  # 40 of 340: 11.76 %
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED

    text = admin_client.get("/admin/").content.decode()
    attention = text.split('id="attention-title"')[1].split("</section>")[0]
    link = f'href="/admin/issues/issue/{send.issue_id}/change/"'
    assert link in attention
    assert "“Too many bounces” is paused: Hard-bounce rate 11.76 %" in attention
    assert "above the 5.00 % limit" in attention
    # Once, not again as a stalled send.
    assert attention.count("Too many bounces") == 1


def test_sends_going_out_show_their_complaint_and_bounce_rates(admin_client):
    send = going_out("Going out", total=1000, accepted=500)
    guard.count(send_id=send.pk, complaints=1, refused=5)

    text = admin_client.get("/admin/").content.decode()
    sends = text.split('class="dash-sends"')[1].split("</ul>")[0]
    assert "Complaint rate 0.20 % (1 of 500 accepted; pauses above 0.30 %)" in sends
    assert "hard-bounce rate 0.99 % (5 of 505; pauses above 5.00 %)" in sends
