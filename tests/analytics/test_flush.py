"""The flush: at least once from the buffer, once into the figures; provider events,
web views and unsubscribes into the same tables."""

import base64
import json
import os
import socket
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis
from django.test import Client

from issues.analytics.buffer import FileBuffer, RedisBuffer, get_buffer
from issues.analytics.flush import forget_past_visitors
from issues.analytics.models import DailySalt, DailyVisitor, Event
from issues.analytics.reports import issue_report
from issues.sending.models import Delivery
from subscribers.models import Subscriber
from tests.analytics.conftest import flush
from tests.analytics.helpers import (
    BINGBOT,
    CHROME,
    IPHONE_MAIL,
    make_issue,
    pixel,
    send_issue,
)
from tests.factories.issues import IssueFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_a_block_replayed_after_a_dead_flush_is_counted_once(outbox, client, buffer):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]
    client.get(pixel(message), HTTP_USER_AGENT=IPHONE_MAIL)
    (hit,) = next(get_buffer().drain(100))  # a flush that died after storing
    flush()
    # The same hit again, as the buffer hands it out once more.
    buffer.append(hit)
    buffer.append(hit)
    flush()

    assert Event.objects.count() == 1
    report = issue_report(issue)
    assert (report.opens, report.unique_opens) == (1, 1)


def test_file_buffer_loses_no_hit_appended_while_it_is_drained(tmp_path):
    buffer = FileBuffer(tmp_path / "hits")
    seen: list[str] = []
    done = threading.Event()

    def writer(name: str) -> None:
        for n in range(2000):
            buffer.append({"i": f"{name}-{n}"})

    threads = [threading.Thread(target=writer, args=(f"w{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()

    def drainer() -> None:
        while not done.is_set():
            for block in buffer.drain(500):
                seen.extend(hit["i"] for hit in block)

    reader = threading.Thread(target=drainer)
    reader.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    for block in buffer.drain(500):
        seen.extend(hit["i"] for hit in block)

    assert sorted(seen) == sorted(f"w{k}-{n}" for k in range(4) for n in range(2000))


def test_the_buffer_keeps_hits_from_threads_and_forked_servers(buffer):
    """The configured buffer (a file here; in the services leg a host's spool
    forwarded to Redis): every thread's and every forked process's hits arrive."""
    threads = [
        threading.Thread(
            target=lambda k=k: [buffer.append({"i": f"t{k}-{n}"}) for n in range(200)]
        )
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffer.append({"i": "parent"})
    child = os.fork()
    if child == 0:  # a server process forked after the parent appended
        try:
            for n in range(50):
                buffer.append({"i": f"child-{n}"})
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    buffer.append({"i": "after"})

    seen = [hit["i"] for block in buffer.drain(500) for hit in block]
    expected = [f"t{k}-{n}" for k in range(4) for n in range(200)]
    expected += ["parent", "after", *(f"child-{n}" for n in range(50))]
    assert sorted(seen) == sorted(expected)


def test_with_redis_down_the_pixel_answers_and_its_hit_waits_on_its_host(
    tmp_path, settings, client, outbox
):
    message = send_issue(make_issue(), outbox, subscribers=1)["reader0@example.org"]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    settings.ANALYTICS_BUFFER_URL = dead
    settings.ANALYTICS_BUFFER_DIR = tmp_path / "spool"
    buffer = get_buffer()
    assert isinstance(buffer, RedisBuffer)

    assert client.get(pixel(message), HTTP_USER_AGENT=CHROME).status_code == 200
    with pytest.raises(redis.ConnectionError):
        buffer.forward(wait=True)

    (block,) = buffer.spool.drain(100)
    assert [(hit["k"], hit["m"]) for hit in block] == [("open", "")]


def _postmark(client, payload: dict):
    return client.post(
        "/email/events/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:s3cret").decode(),
    )


def test_provider_opens_and_complaints_join_quire_s_own_once(outbox, client, settings):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]
    Delivery.objects.update(message_id="00000000-0000-0000-0000-000000000042")
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    opened = json.loads((FIXTURES / "analytics" / "postmark-open.json").read_text())
    complaint = json.loads(
        (FIXTURES / "sending" / "postmark-complaint.json").read_text()
    )
    complaint["Email"] = "reader0@example.org"

    client.get(pixel(message), HTTP_USER_AGENT=IPHONE_MAIL)  # Quire's pixel
    assert _postmark(client, opened).status_code == 200  # the provider's, same open
    assert _postmark(client, complaint).status_code == 200
    assert _postmark(client, complaint).status_code == 200  # sent twice
    flush()
    flush()

    report = issue_report(issue)
    assert (report.unique_opens, report.opens) == (1, 2)
    assert report.complaints == 1


def test_web_views_count_cached_pages_and_referrers_but_no_bots(client):
    issue = IssueFactory(slug="convnets", title="ConvNets are back", published=True)
    news = "https://news.ycombinator.com/item?id=424242"
    for agent in (CHROME, CHROME, IPHONE_MAIL):
        # The second is served from the page cache.
        Client().get("/issues/convnets/", HTTP_USER_AGENT=agent, HTTP_REFERER=news)
    Client().get("/issues/convnets/", HTTP_USER_AGENT=BINGBOT)
    Client().get("/issues/convnets/", HTTP_USER_AGENT=CHROME)  # typed in
    flush()

    report = issue_report(issue)
    assert report.web_views == 4
    assert report.web_visitors == 2  # the same browser all day is one visitor
    assert report.referrers == [("news.ycombinator.com", 3)]
    # Nothing personal is kept: no address, no IP, no agent; hashes only.
    assert len(DailyVisitor.objects.values_list("digest", flat=True)) == 2


def test_visitor_hashes_and_salts_go_once_their_day_is_counted():
    today = date(2026, 12, 2)
    for day in (today - timedelta(days=2), today - timedelta(days=1), today):
        DailySalt.objects.create(day=day, salt="x" * 64)
        DailyVisitor.objects.create(day=day, page="issue:1", digest="a" * 32)

    forget_past_visitors(today=today)

    assert set(DailySalt.objects.values_list("day", flat=True)) == {
        today - timedelta(days=1),
        today,
    }
    assert DailyVisitor.objects.count() == 2


def test_an_unsubscribe_from_the_email_counts_against_its_issue(outbox):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=2)["reader0@example.org"]
    one_click = message["List-Unsubscribe"].split(">")[0].lstrip("<")
    assert f"?issue={issue.pk}" in one_click

    # RFC 8058's one-click POST, as the mail provider sends it: no cookie, no token.
    path = one_click.removeprefix("http://testserver")
    response = Client(enforce_csrf_checks=True).post(
        path, {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    # Again (a retry), and one naming an issue this subscriber was never sent.
    other = IssueFactory(slug="never-sent")
    Client().post(path, {"List-Unsubscribe": "One-Click"})
    reader1 = Subscriber.objects.get(email="reader1@example.org")
    Client().post(f"/unsubscribe/{reader1.token}/?issue={other.pk}")
    flush()

    assert issue_report(issue).unsubscribes == 1
    assert issue_report(other).unsubscribes == 0
