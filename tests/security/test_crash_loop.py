"""An issue body that crashes the CSS inliner pauses its send instead of a crash loop.

A real Celery worker (prefork) renders a body of 50,000 nested <div>: css_inline
overflows its stack and the worker process dies with SIGSEGV, as it does in
production. The body is written straight into the stored fields (an old row, or a
direct update), past any check made when an issue is saved.

The content limits are the first defence: with them, such a body never reaches the
inliner (tests/security/test_content_limits.py). This test lifts them for the
worker (QUIRE_BODY_MAX_DEPTH, as an operator could) to prove the second defence
holds when anything the limits miss kills the worker: the send pauses. Runs in both
legs: SQLite with the filesystem broker, and PostgreSQL with Redis.
"""

import subprocess
import sys
from collections import Counter

from django.urls import reverse

from issues.models import Issue
from issues.sending import services, tasks
from issues.sending.models import Delivery, Send
from tests.conftest import wait_for
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers
from tests.sending.test_worker import wait_until_done, worker_env

DEPTH = 50_000
HOSTILE_HTML = "<div>" * DEPTH + "deep" + "</div>" * DEPTH
MAX_CRASHES = 3
# What the prefork pool logs for each child it lost (and then replaced).
CRASHED = "exited with 'signal 11 (SIGSEGV)'"

_INLINE_IT = """
import sys, css_inline
html = "<html><body>" + sys.stdin.read() + "</body></html>"
css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False).inline(html)
"""


def test_the_hostile_body_really_kills_the_process_that_inlines_it():
    # The premise of the test below: no stand-in, the inliner itself segfaults.
    run = subprocess.run(
        [sys.executable, "-c", _INLINE_IT],
        input=HOSTILE_HTML,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == -11  # SIGSEGV


def test_a_body_that_crashes_the_worker_pauses_the_send_and_healthz_says_so(
    celery_worker_factory, smtp_server, client, django_user_model, settings
):
    settings.QUIRE_BODY_MAX_DEPTH = 10 * DEPTH  # publishing checks the limits too
    subscribers = make_subscribers(30)
    issue = IssueFactory(title="Deeply nested notes")
    Issue.objects.filter(pk=issue.pk).update(
        body=HOSTILE_HTML, body_html=HOSTILE_HTML, free_html=HOSTILE_HTML, paid_html=""
    )
    worker = celery_worker_factory(
        extra_env=worker_env(
            smtp_server,
            SENDING_MAX_WORKER_CRASHES=MAX_CRASHES,
            QUIRE_BODY_MAX_DEPTH=10 * DEPTH,
        )
    )
    send = services.publish_issue(issue=issue)

    def paused():
        send.refresh_from_db()
        return send.status == Send.Status.PAUSED and send.paused_reason

    wait_for(paused, timeout=180, interval=0.5, message="the send paused")

    assert "stopped the worker 3 times" in send.paused_reason
    assert "Fix the issue and resume" in send.paused_reason
    log = worker.output()
    assert log.count(CRASHED) == MAX_CRASHES  # then no more tries
    assert worker.proc.poll() is None  # the worker lives on, its children replaced
    assert smtp_server.recipients() == []  # nothing half-sent
    assert Delivery.objects.filter(send=send, status="queued").count() == 30
    # The reconciler leaves a paused send alone: no batch tasks queued for it.
    assert tasks.reconcile_sends()["kicked"] == 0

    health = client.get("/healthz")
    assert health.status_code == 503
    body = health.json()
    assert "sending" in body["failing"]
    assert "Deeply nested notes" in body["sending"]["detail"]
    assert "stopped the worker 3 times" in body["sending"]["detail"]

    author = django_user_model.objects.create_superuser("a", "a@example.org", "pw")
    client.force_login(author)
    page = client.get(reverse("admin:issues_issue_change", args=[issue.pk]))
    assert "Paused by Quire:" in page.content.decode()
    assert "stopped the worker 3 times" in page.content.decode()
    status = client.get(reverse("admin:sending_status", args=[issue.pk])).json()
    assert "stopped the worker 3 times" in status["paused_reason"]
    send_page = client.get(reverse("admin:sending_send_change", args=[send.pk]))
    assert "stopped the worker 3 times" in send_page.content.decode()

    # The author fixes the body and resumes: everyone gets it, once.
    issue.refresh_from_db()
    issue.body = "A readable body after all."
    issue.save()
    client.post(reverse("admin:sending_control", args=[issue.pk, "resume"]))
    send.refresh_from_db()
    assert send.paused_reason == ""
    wait_until_done(send)

    received = Counter(smtp_server.recipients())
    assert set(received) == {s.email for s in subscribers}
    assert set(received.values()) == {1}
    html = smtp_server.messages[0].message.get_body(("html",)).get_content()
    assert "A readable body after all." in html
    assert worker.output().count(CRASHED) == MAX_CRASHES
    client.logout()
    assert client.get("/healthz").json()["sending"]["ok"] is True
