"""A worker killed mid-send: nothing is missed, and the few possible duplicates show.

Each of the worker's processes has 20 SMTP sessions open when it is killed: at most
one message per session may arrive twice (a session lets the server accept its next
message only once the previous outcome is written), and at most two per session are
shown as possibly duplicated.

PostgreSQL + Redis only (CI's services leg); on SQLite this module is deselected by
tests/sending/conftest.py, never skipped.
"""

from collections import Counter

import pytest
from django.db import connection
from django.urls import reverse

from issues.sending import services, tasks
from issues.sending.models import Delivery, Send
from tests.conftest import wait_for
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers
from tests.sending.test_worker import worker_env

pytestmark = pytest.mark.services

# Long enough that a loaded machine's pauses don't look like a dead worker.
LEASE = 5
CONCURRENCY = 2
SESSIONS = 20


def test_killed_worker_mid_send_misses_no_one_and_shows_duplicates(
    celery_worker_factory, smtp_server, settings, client, django_user_model
):
    assert connection.vendor == "postgresql", "this test needs PostgreSQL"
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "and Redis"
    settings.SENDING_LEASE_SECONDS = LEASE
    subscribers = make_subscribers(5000)
    issue = IssueFactory(title="Crash test")

    def slow_enough(envelope):
        # A little work per message keeps the send going while we pull the plug.
        import time

        time.sleep(0.0005)

    smtp_server.handler.data_hook = slow_enough
    env = worker_env(
        smtp_server, SENDING_LEASE_SECONDS=LEASE, SENDING_SMTP_SESSIONS=SESSIONS
    )
    first = celery_worker_factory(concurrency=CONCURRENCY, extra_env=env)
    send = services.publish_issue(issue=issue)

    def halfway():
        return Delivery.objects.filter(send=send, status="sent").count() >= 1500

    wait_for(halfway, timeout=120, interval=0.05, message="1500 sent")
    first.kill()
    at_kill = set(
        Delivery.objects.filter(send=send, status="sending").values_list(
            "email", flat=True
        )
    )
    in_flight = len(at_kill)
    # Per session: at most one message the server may have accepted (its outcome
    # not yet written), and the next one marked whose content has not left.
    assert in_flight <= 2 * CONCURRENCY * SESSIONS
    assert Delivery.objects.filter(send=send, status="queued").exists()

    celery_worker_factory(concurrency=CONCURRENCY, extra_env=env)

    def finished():
        # Beat runs the reconciler every minute; here we run it as often as needed.
        tasks.reconcile_sends()
        send.refresh_from_db()
        return send.status == Send.Status.DONE

    wait_for(finished, timeout=180, interval=1, message="send finished")

    received = Counter(smtp_server.recipients())
    assert set(received) == {s.email for s in subscribers}  # nobody missed
    duplicated = {email for email, n in received.items() if n > 1}
    print(f"in flight at the kill: {in_flight}; received twice: {len(duplicated)}")
    assert max(received.values()) <= 2
    assert len(duplicated) <= CONCURRENCY * SESSIONS
    # Only what was in flight at the kill may arrive twice. Anything else means a
    # live worker's lease ran out (a stall longer than LEASE) or a real defect:
    # the message names those rows.
    later = Delivery.objects.filter(send=send, email__in=duplicated - at_kill)
    assert duplicated <= at_kill, list(
        later.values("email", "attempts", "crashes", "claimed_by", "last_error")
    )
    flagged = set(
        Delivery.objects.filter(send=send, possibly_duplicate=True).values_list(
            "email", flat=True
        )
    )
    assert duplicated <= flagged  # every real duplicate is shown
    assert len(flagged) == in_flight
    assert send.sent_count == 5000 and send.resolved_after_crash == len(flagged)

    author = django_user_model.objects.create_superuser("a", "a@example.org", "pw")
    client.force_login(author)
    page = client.get(reverse("admin:issues_issue_change", args=[issue.pk]))
    html = page.content.decode()
    status = client.get(reverse("admin:sending_status", args=[issue.pk])).json()
    assert status["possibly_duplicated"] == len(flagged)
    for email in flagged:
        assert email in html
    if flagged:
        assert "possibly duplicated" in html
