"""/healthz reports a send that makes no progress, and one paused by the guard."""

from datetime import timedelta

import pytest
from django.utils import timezone

from issues.sending import delivery, services
from issues.sending.models import Delivery, Send
from newsletter.services import record_heartbeat
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _worker_alive():
    record_heartbeat(hostname="worker@test")


def sending_since(issue, *, minutes: float) -> Send:
    """A send that started, and last claimed or sent anything, minutes ago."""
    make_subscribers(5)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    then = timezone.now() - timedelta(minutes=minutes)
    Send.objects.filter(pk=send.pk).update(started_at=then, heartbeat_at=then)
    return send


def test_healthz_reports_a_send_that_sent_nothing_for_the_stalled_minutes(
    client, issue, settings
):
    settings.SENDING_STALLED_MINUTES = 10
    send = sending_since(issue, minutes=11)

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["sending"]
    detail = body["sending"]["detail"]
    assert "Top 10 papers of the year" in detail and f"send {send.pk}" in detail
    assert "has sent nothing for 11 minutes with 5 emails still queued" in detail


def test_healthz_is_fine_while_a_send_makes_progress(client, issue, settings):
    settings.SENDING_STALLED_MINUTES = 10
    send = sending_since(issue, minutes=30)
    # An email went out a minute ago, although no batch was claimed since.
    Delivery.objects.filter(pk=Delivery.objects.filter(send=send).first().pk).update(
        status="sent", sent_at=timezone.now() - timedelta(minutes=1)
    )

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["sending"] == {"ok": True, "detail": "1 send in progress"}


def test_healthz_ignores_an_old_send_with_nothing_left_to_send(client, issue):
    send = sending_since(issue, minutes=120)
    Delivery.objects.filter(send=send).update(status="sent")

    assert client.get("/healthz").status_code == 200


def test_healthz_reports_a_send_the_crash_guard_paused_with_its_reason(client, issue):
    send = sending_since(issue, minutes=0)
    delivery.pause_send(
        send_id=send.pk, reason="Rendering this issue's email stopped …"
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    detail = response.json()["sending"]["detail"]
    assert "Top 10 papers of the year" in detail
    assert "is paused: Rendering this issue's email stopped …" in detail

    services.resume_send(send=send)
    assert client.get("/healthz").status_code == 200


def test_healthz_leaves_a_send_the_author_paused_alone(client, issue):
    send = sending_since(issue, minutes=120)
    services.pause_send(send=send)

    assert client.get("/healthz").status_code == 200
