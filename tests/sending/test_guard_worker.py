"""End to end: the deliverability guard pauses a send a real worker is sending.

A real Celery worker process sends to a real SMTP server (aiosmtpd). In one test the
server refuses a tenth of the addresses with 550 and the send pauses itself on its
hard-bounce rate; in the other the provider's webhook (Postmark's, posted with its
basic auth as the provider would) reports spam complaints while the send is going
out and it pauses on its complaint rate. Either way nothing is lost: the rest stays
queued and the author's resume sends it. Both legs: SQLite with the filesystem
broker, PostgreSQL with Redis.
"""

import base64
import json
import re
import time
from collections import Counter
from pathlib import Path

from issues.sending import services
from issues.sending.models import Delivery, Send
from tests.conftest import wait_for
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers
from tests.sending.test_worker import wait_until_done, worker_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sending"


def wait_until_paused(send: Send, timeout: float = 120) -> Send:
    def paused():
        send.refresh_from_db()
        return send.status == Send.Status.PAUSED

    wait_for(paused, timeout=timeout, interval=0.2, message=f"send {send.pk} paused")
    # The emails in flight when it paused finish and are recorded as usual.
    wait_for(
        lambda: not Delivery.objects.filter(send=send, status="sending").exists(),
        timeout=60,
        message="the emails in flight recorded",
    )
    send.refresh_from_db()
    return send


def by_status(send: Send) -> dict[str, set[str]]:
    rows: dict[str, set[str]] = {}
    for email, status in Delivery.objects.filter(send=send).values_list(
        "email", "status"
    ):
        rows.setdefault(status, set()).add(email)
    return rows


def test_a_send_refused_for_too_many_addresses_pauses_itself_and_resumes(
    celery_worker_factory, smtp_server
):
    subscribers = make_subscribers(1000)
    refused = {s.email for s in subscribers[::10]}  # 10 %, twice the limit
    refusing = {"on": True}
    smtp_server.handler.rcpt_hook = lambda address: (
        "550 5.1.1 No such user here" if refusing["on"] and address in refused else None
    )
    celery_worker_factory(extra_env=worker_env(smtp_server))

    send = wait_until_paused(services.publish_issue(issue=IssueFactory()))

    assert send.paused_reason.startswith("Hard-bounce rate ")
    assert "above the 5.00 % limit" in send.paused_reason
    assert "resume from the send panel" in send.paused_reason
    rows = by_status(send)
    sent, bounced = rows.get("sent", set()), rows.get("bounced", set())
    queued = rows.get("queued", set())
    # Judged from 200 emails on, it stopped long before the end; nothing was lost.
    assert len(sent) + len(bounced) >= 200
    assert len(queued) >= 300
    assert set(rows) <= {"sent", "bounced", "queued"}
    assert len(sent) + len(bounced) + len(queued) == 1000
    assert bounced <= refused
    # The counters are exact: once per email, as the deliveries say.
    assert send.accepted_count == len(sent)
    assert send.refused_count == len(bounced)
    # The reason gives the figures at the moment it paused; the emails then in
    # flight were recorded after it.
    at_pause = re.search(
        r"\((\d+) addresses refused for good out of (\d+)", send.paused_reason
    )
    assert at_pause is not None
    assert 200 <= int(at_pause[2]) <= len(sent) + len(bounced)
    assert int(at_pause[1]) <= len(bounced)
    received = Counter(smtp_server.recipients())
    assert set(received) == sent and set(received.values()) == {1}

    # Paused means paused: the worker claims nothing more.
    time.sleep(2)
    assert len(smtp_server.recipients()) == len(sent)

    # The author checked the list (here: the server takes everyone now), resumes.
    refusing["on"] = False
    send = services.resume_send(send=send)
    assert send.status == Send.Status.SENDING and send.paused_reason == ""
    send = wait_until_done(send)

    received = Counter(smtp_server.recipients())
    assert set(received.values()) == {1}
    assert set(received) == {s.email for s in subscribers} - bounced
    assert send.accepted_count == 1000 - len(bounced)
    assert send.refused_count == len(bounced) == send.bounced_count


def post_complaint(client, delivery: Delivery, event_id: int) -> None:
    payload = json.loads((FIXTURES / "postmark-complaint.json").read_text())
    payload.update(ID=event_id, Email=delivery.email, MessageID=delivery.message_id)
    auth = base64.b64encode(b"hook:s3cret").decode()
    response = client.post(
        "/email/events/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )
    assert response.status_code == 200


def test_complaints_reported_by_the_provider_mid_send_pause_it(
    celery_worker_factory, smtp_server, client, settings
):
    # This process answers the provider's webhook; the worker sends over SMTP.
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    subscribers = make_subscribers(1000)
    # 50 a second: the send takes 20 s, time for the complaints to come in.
    celery_worker_factory(extra_env=worker_env(smtp_server, SENDING_RATE_LIMIT=50))
    send = services.publish_issue(issue=IssueFactory())

    def accepted() -> int:
        send.refresh_from_db()
        return send.accepted_count if send.accepted_count >= 250 else 0

    wait_for(accepted, timeout=120, interval=0.2, message="250 emails accepted")
    first = list(Delivery.objects.filter(send=send, status="sent").order_by("pk")[:3])
    post_complaint(client, first[0], 1)
    post_complaint(client, first[0], 2)  # the same complaint again: counted once
    for event_id, delivery in enumerate(first[1:], start=3):
        send.refresh_from_db()
        if send.status == Send.Status.PAUSED:
            break
        post_complaint(client, delivery, event_id)

    send = wait_until_paused(send, timeout=10)
    assert send.paused_reason.startswith("Complaint rate ")
    assert "above the 0.30 % limit" in send.paused_reason
    assert 1 <= send.complaint_count <= 3
    assert re.search(r"\(\d spam complaints out of \d+ accepted", send.paused_reason)
    rows = by_status(send)
    assert len(rows.get("queued", ())) >= 300  # paused mid-send
    received = Counter(smtp_server.recipients())
    assert set(received) == rows["sent"] and set(received.values()) == {1}
    assert send.accepted_count == len(rows["sent"])

    # Resumed, it does not pause again on the same complaints, and finishes.
    send = services.resume_send(send=send)
    assert send.complaints_at_resume == send.complaint_count
    send = wait_until_done(send)
    received = Counter(smtp_server.recipients())
    assert set(received) == {s.email for s in subscribers}
    assert set(received.values()) == {1}
