"""Sending through a provider's API in batch calls, against local fake provider APIs.

anymail's real Mailgun, Postmark and Amazon SES backends call a pytest-httpserver
that answers as each provider's API does; the tests read what the server received.
"""

import json
import re
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from issues.sending import delivery, services
from issues.sending.emails.tracking import delivery_part
from issues.sending.models import Delivery
from subscribers.models import Subscriber
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db

MAILGUN_PATH = "/v3/mg.example.org/messages"
SES_BULK_PATH = "/v2/email/outbound-bulk-emails"


class FakeProvider:
    """Record each API call's request and answer it with answer(request).

    together: the first calls are answered only once that many are in flight at
    the same time (a client that makes one call at a time gets a 500 instead).
    """

    def __init__(self, answer, *, together: int = 0) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(together) if together else None

    def __call__(self, request: Request) -> Response:
        request.get_data()  # keep the body readable after the answer
        with self.lock:
            self.requests.append(request)
            first = len(self.requests) <= (self.barrier.parties if self.barrier else 0)
        if first:
            try:
                self.barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                return json_response({"Message": "calls came one at a time"}, 500)
        return self.answer(request)


def json_response(data, status: int = 200, **headers) -> Response:
    return Response(
        json.dumps(data), status=status, headers=headers, mimetype="application/json"
    )


def start(issue, count: int):
    make_subscribers(count)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    return send


def tokens() -> dict[str, str]:
    return dict(Subscriber.objects.values_list("email", "token"))


def make_due(send) -> None:
    Delivery.objects.filter(send=send, status="queued").update(
        next_attempt_at=timezone.now()
    )


# --- Mailgun: recipient variables (%recipient.KEY%) in one call per 1,000 ----------


@pytest.fixture
def mailgun(settings, httpserver):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "key-test",
        "MAILGUN_API_URL": httpserver.url_for("/v3"),
        "MAILGUN_SENDER_DOMAIN": "mg.example.org",
    }
    return httpserver


def mailgun_accepts(request: Request) -> Response:
    return json_response(
        {"id": "<batch.1@mg.example.org>", "message": "Queued. Thanks."}
    )


def test_mailgun_sends_one_call_per_thousand_with_each_recipients_own_values(
    issue, mailgun
):
    fake = FakeProvider(mailgun_accepts)
    mailgun.expect_request(MAILGUN_PATH, method="POST").respond_with_handler(fake)
    send = start(issue, 2500)

    result = delivery.deliver_send(send_id=send.pk)

    assert result.next == "done"
    assert len(fake.requests) == 3
    assert sorted(len(r.form.getlist("to")) for r in fake.requests) == [500, 1000, 1000]
    addresses = [a for r in fake.requests for a in r.form.getlist("to")]
    assert len(set(addresses)) == 2500
    known = tokens()
    ids = dict(Delivery.objects.filter(send=send).values_list("email", "pk"))
    for request in fake.requests:
        form = request.form
        # The body is written once, with Mailgun's merge fields in it.
        assert "%recipient.quire_unsubscribe%" in form["text"]
        assert "%recipient.quire_unsubscribe_html%" in form["html"]
        assert form["h:Message-Id"] == "%recipient.h:Message-Id%"
        assert form["h:List-Unsubscribe"] == "%recipient.h:List-Unsubscribe%"
        assert form["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert form["h:List-Id"].endswith("<newsletter.localhost>")
        variables = json.loads(form["recipient-variables"])
        assert set(variables) == set(form.getlist("to"))
        for address, values in variables.items():
            token = known[address]
            assert (
                values["quire_unsubscribe"].count(f"/unsubscribe/{token}/?issue=") == 1
            )
            assert values["quire_email"] == address
            assert f"/unsubscribe/{token}/?issue=" in values["h:List-Unsubscribe"]
            assert values["h:Message-Id"] == (
                f"<quire.{send.pk}.{ids[address]}@localhost>"
            )
    rows = Delivery.objects.filter(send=send)
    assert rows.filter(status="sent").count() == 2500
    assert set(rows.values_list("message_id", flat=True)) == {
        "<batch.1@mg.example.org>"
    }
    assert set(rows.values_list("attempts", flat=True)) == {1}
    send.refresh_from_db()
    assert send.sent_count == 2500


def test_a_429_puts_the_calls_rows_back_until_retry_after(issue, mailgun, settings):
    settings.SENDING_RETRY_BASE_DELAY = 1
    calls = Counter()

    def answer(request: Request) -> Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return json_response(
                {"message": "Too many requests"}, 429, **{"Retry-After": "600"}
            )
        return mailgun_accepts(request)

    fake = FakeProvider(answer)
    mailgun.expect_request(MAILGUN_PATH, method="POST").respond_with_handler(fake)
    settings.SENDING_PROVIDER_BATCH_SIZE = 10
    settings.SENDING_PROVIDER_CALLS = 1
    send = start(issue, 30)
    before = timezone.now()

    result = delivery.deliver_send(send_id=send.pk)

    assert len(fake.requests) == 3
    throttled = set(fake.requests[0].form.getlist("to"))
    assert len(throttled) == 10
    waiting = Delivery.objects.filter(send=send, status="queued")
    assert set(waiting.values_list("email", flat=True)) == throttled
    for row in waiting:
        assert row.next_attempt_at >= before + timedelta(seconds=600)
        assert row.claimed_by == ""
        assert "429" in row.last_error
    assert Delivery.objects.filter(send=send, status="sent").count() == 20
    assert result.next == "wait"
    assert result.wait > 590

    make_due(send)
    assert delivery.deliver_send(send_id=send.pk).next == "done"
    assert set(fake.requests[3].form.getlist("to")) == throttled
    assert Delivery.objects.filter(send=send, status="sent").count() == 30


def test_a_5xx_retries_the_whole_call(issue, mailgun, settings):
    settings.SENDING_PROVIDER_BATCH_SIZE = 5
    settings.SENDING_PROVIDER_CALLS = 1
    answers = iter([json_response({"message": "upstream"}, 503)])

    def answer(request: Request) -> Response:
        return next(answers, None) or mailgun_accepts(request)

    fake = FakeProvider(answer)
    mailgun.expect_request(MAILGUN_PATH, method="POST").respond_with_handler(fake)
    send = start(issue, 15)

    delivery.deliver_send(send_id=send.pk)

    assert len(fake.requests) == 3
    first = set(fake.requests[0].form.getlist("to"))
    rows = Delivery.objects.filter(send=send)
    assert set(rows.filter(status="queued").values_list("email", flat=True)) == first
    assert rows.filter(status="sent").count() == 10
    for row in rows.filter(status="queued"):
        assert "503" in row.last_error
        assert row.next_attempt_at > timezone.now()


BAD = "reader7@example.org"


def test_a_call_refused_for_one_bad_address_fails_only_that_address(
    issue, mailgun, settings
):
    settings.SENDING_PROVIDER_BATCH_SIZE = 5
    settings.SENDING_PROVIDER_CALLS = 2

    def answer(request: Request) -> Response:
        # Mailgun refuses the whole call when any recipient address is invalid.
        if BAD in request.form.getlist("to"):
            return json_response({"message": "'to' parameter is not valid"}, 400)
        return mailgun_accepts(request)

    fake = FakeProvider(answer)
    mailgun.expect_request(MAILGUN_PATH, method="POST").respond_with_handler(fake)
    send = start(issue, 15)

    assert delivery.deliver_send(send_id=send.pk).next == "done"

    # Three calls of five; the refused one again as five calls of one.
    assert sorted(len(r.form.getlist("to")) for r in fake.requests) == [
        1, 1, 1, 1, 1, 5, 5, 5,
    ]  # fmt: skip
    rows = Delivery.objects.filter(send=send)
    failed = rows.get(status="failed")
    assert failed.email == BAD
    assert "400" in failed.last_error
    assert rows.filter(status="sent").count() == 14
    assert set(rows.values_list("attempts", flat=True)) == {1}


# --- Amazon SES: SendBulkEmail with an inline template, one status per destination --


@pytest.fixture
def ses(settings, httpserver):
    settings.EMAIL_BACKEND = "anymail.backends.amazon_ses.EmailBackend"
    settings.ANYMAIL = {
        "AMAZON_SES_CLIENT_PARAMS": {
            "endpoint_url": httpserver.url_for("/"),
            "region_name": "eu-west-1",
            "aws_access_key_id": "AKIDTEST",
            "aws_secret_access_key": "secret",
            "config": {"retries": {"max_attempts": 1}},
        }
    }
    return httpserver


def ses_answer(refuse: set[str]):
    def answer(request: Request) -> Response:
        entries = json.loads(request.get_data())["BulkEmailEntries"]
        results = []
        for n, entry in enumerate(entries):
            (to,) = entry["Destination"]["ToAddresses"]
            if to in refuse:
                results.append(
                    {"Status": "MESSAGE_REJECTED", "Error": "Address blocked for now"}
                )
            else:
                results.append({"Status": "SUCCESS", "MessageId": f"ses-{to}-{n}"})
        return json_response({"BulkEmailEntryResults": results})

    return answer


def destinations(request: Request) -> list[str]:
    entries = json.loads(request.get_data())["BulkEmailEntries"]
    return [e["Destination"]["ToAddresses"][0] for e in entries]


def test_ses_refusing_3_of_1000_retries_only_those_3(issue, ses, settings):
    settings.SENDING_RETRY_BASE_DELAY = 60
    refused = {"reader7@example.org", "reader500@example.org", "reader999@example.org"}
    fake = FakeProvider(ses_answer(refused))
    ses.expect_request(SES_BULK_PATH, method="POST").respond_with_handler(fake)
    send = start(issue, 1000)

    first = delivery.deliver_send(send_id=send.pk)

    assert len(fake.requests) == 20  # SES takes 50 destinations per call
    assert all(len(destinations(r)) == 50 for r in fake.requests)
    rows = Delivery.objects.filter(send=send)
    assert rows.filter(status="sent").count() == 997
    queued = rows.filter(status="queued")
    assert set(queued.values_list("email", flat=True)) == refused
    assert all("Address blocked" in row.last_error for row in queued)
    assert first.next == "wait"
    sent_before = dict(rows.filter(status="sent").values_list("pk", "message_id"))
    assert all(mid.startswith("ses-") for mid in sent_before.values())

    make_due(send)
    fake.answer = ses_answer(set())
    assert delivery.deliver_send(send_id=send.pk).next == "done"

    assert len(fake.requests) == 21
    assert sorted(destinations(fake.requests[-1])) == sorted(refused)
    everyone = Counter(a for r in fake.requests for a in destinations(r))
    assert sum(everyone.values()) == 1003
    assert {a for a, n in everyone.items() if n > 1} == refused
    assert rows.filter(status="sent").count() == 1000
    # The 997 kept what their first call recorded.
    assert (
        dict(rows.filter(pk__in=sent_before).values_list("pk", "message_id"))
        == sent_before
    )


def test_ses_entries_carry_each_recipients_headers_and_values(issue, ses):
    fake = FakeProvider(ses_answer(set()))
    ses.expect_request(SES_BULK_PATH, method="POST").respond_with_handler(fake)
    send = start(issue, 3)

    assert delivery.deliver_send(send_id=send.pk).next == "done"

    (request,) = fake.requests
    data = json.loads(request.get_data())
    template = data["DefaultContent"]["Template"]["TemplateContent"]
    assert template["Subject"] == "Top 10 papers of the year"
    assert "{{{quire_unsubscribe}}}" in template["Text"]
    assert "{{{quire_unsubscribe_html}}}" in template["Html"]
    # Tracked (the subscribers allow it): the pixel and links carry each one's part.
    assert template["Html"].count("{{{quire_track}}}") >= 2
    known = tokens()
    ids = dict(Delivery.objects.filter(send=send).values_list("email", "pk"))
    for entry in data["BulkEmailEntries"]:
        (to,) = entry["Destination"]["ToAddresses"]
        values = json.loads(
            entry["ReplacementEmailContent"]["ReplacementTemplate"][
                "ReplacementTemplateData"
            ]
        )
        assert (
            values["quire_unsubscribe"].count(f"/unsubscribe/{known[to]}/?issue=") == 1
        )
        assert values["quire_track"] == delivery_part(ids[to])
        headers = {h["Name"]: h["Value"] for h in entry["ReplacementHeaders"]}
        assert headers["Message-ID"] == f"<quire.{send.pk}.{ids[to]}@localhost>"
        assert f"/unsubscribe/{known[to]}/?issue=" in headers["List-Unsubscribe"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "List-Id" in headers


# --- Postmark: no merge fields outside stored templates, one message per recipient --


@pytest.fixture
def threaded_httpserver():
    """A fake provider API that answers several calls at once, like the real one."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postmark(settings, threaded_httpserver):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "server-token",
        "POSTMARK_API_URL": threaded_httpserver.url_for("/"),
    }
    return threaded_httpserver


INACTIVE = "reader2@example.org"


def postmark_answer(request: Request) -> Response:
    data = json.loads(request.get_data())
    if data["To"] == INACTIVE:
        return json_response(
            {
                "ErrorCode": 406,
                "Message": "You tried to send to a recipient that has been marked as "
                f"inactive.\nFound inactive addresses: {INACTIVE}.\nInactive "
                "recipients are ones that have generated a hard bounce or a spam "
                "complaint.",
            },
            422,
        )
    return json_response(
        {
            "To": data["To"],
            "SubmittedAt": "2026-01-01T00:00:00Z",
            "MessageID": f"pm-{data['To']}",
            "ErrorCode": 0,
            "Message": "OK",
        }
    )


def test_postmark_sends_each_recipient_its_own_message_and_bounces_inactive(
    issue, postmark, settings
):
    settings.SENDING_PROVIDER_CALLS = 3
    # Three calls in flight at once, or the first ones fail.
    fake = FakeProvider(postmark_answer, together=3)
    postmark.expect_request("/email", method="POST").respond_with_handler(fake)
    send = start(issue, 6)

    assert delivery.deliver_send(send_id=send.pk).next == "done"

    assert len(fake.requests) == 6
    known = tokens()
    ids = dict(Delivery.objects.filter(send=send).values_list("email", "pk"))
    for request in fake.requests:
        data = json.loads(request.get_data())
        to = data["To"]
        headers = {h["Name"]: h["Value"] for h in data["Headers"]}
        assert headers["Message-ID"] == f"<quire.{send.pk}.{ids[to]}@localhost>"
        assert f"/unsubscribe/{known[to]}/?issue=" in headers["List-Unsubscribe"]
        assert f"?subject=unsubscribe%20{known[to]}>" in headers["List-Unsubscribe"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert f"/unsubscribe/{known[to]}/" in data["TextBody"]
        assert re.search(rf"/unsubscribe/{known[to]}/", data["HtmlBody"])
    rows = Delivery.objects.filter(send=send)
    assert rows.get(email=INACTIVE).status == "bounced"
    assert Subscriber.objects.get(email=INACTIVE).status == Subscriber.Status.BOUNCED
    sent = rows.filter(status="sent")
    assert sent.count() == 5
    assert all(row.message_id == f"pm-{row.email}" for row in sent)


@pytest.mark.django_db(transaction=True)
def test_a_calls_rows_are_committed_as_sending_before_the_call(
    issue, mailgun, settings
):
    from django.db import connection

    settings.SENDING_PROVIDER_BATCH_SIZE = 10
    seen: list[dict[str, str]] = []

    def answer(request: Request) -> Response:
        # The provider's side: what another database connection sees as it answers.
        try:
            to = request.form.getlist("to")
            seen.append(
                dict(
                    Delivery.objects.filter(email__in=to).values_list("email", "status")
                )
            )
        finally:
            connection.close()
        return mailgun_accepts(request)

    fake = FakeProvider(answer)
    mailgun.expect_request(MAILGUN_PATH, method="POST").respond_with_handler(fake)
    make_subscribers(30)
    # Committed, publishing runs the send's tasks (eager here) at once.
    send = services.publish_issue(issue=issue)

    send.refresh_from_db()
    assert send.status == "done"
    assert len(seen) == 3
    for statuses in seen:
        assert len(statuses) == 10
        assert set(statuses.values()) == {"sending"}
    assert Delivery.objects.filter(send=send, status="sent").count() == 30


# --- SendGrid: substitutions per personalization, a message id per recipient -------


# anymail still ships the SendGrid backend but warns that it no longer supports it.
@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_sends_one_call_with_a_personalization_per_recipient(
    issue, settings, httpserver
):
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {
        "SENDGRID_API_KEY": "SG.test",
        "SENDGRID_API_URL": httpserver.url_for("/v3/"),
    }
    fake = FakeProvider(lambda request: Response("", status=202))
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_handler(fake)
    send = start(issue, 12)

    assert delivery.deliver_send(send_id=send.pk).next == "done"

    (request,) = fake.requests
    data = json.loads(request.get_data())
    contents = {c["type"]: c["value"] for c in data["content"]}
    assert "-quire_unsubscribe-" in contents["text/plain"]
    assert "-quire_unsubscribe_html-" in contents["text/html"]
    assert data["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    known = tokens()
    ids = dict(Delivery.objects.filter(send=send).values_list("email", "pk"))
    assert len(data["personalizations"]) == 12
    for personalization in data["personalizations"]:
        (to,) = (r["email"] for r in personalization["to"])
        unsubscribe = personalization["substitutions"]["-quire_unsubscribe-"]
        assert unsubscribe.count(f"/unsubscribe/{known[to]}/?issue=") == 1
        headers = personalization["headers"]
        assert headers["Message-ID"] == f"<quire.{send.pk}.{ids[to]}@localhost>"
        assert f"/unsubscribe/{known[to]}/?issue=" in headers["List-Unsubscribe"]
    # SendGrid answers with no ids; anymail makes one per recipient.
    message_ids = Delivery.objects.filter(send=send, status="sent").values_list(
        "message_id", flat=True
    )
    assert len(set(message_ids)) == 12


def test_too_many_inactive_addresses_pause_the_send_and_hand_back_the_rest(
    issue, postmark, settings
):
    # One claim of 300 rows, a call each: the guard stops the calls not yet made.
    settings.SENDING_BATCH_SIZE = 300
    settings.SENDING_PROVIDER_CALLS = 3
    inactive = {f"reader{n}@example.org" for n in range(0, 400, 10)}  # 10 %

    def answer(request: Request) -> Response:
        to = json.loads(request.get_data())["To"]
        if to in inactive:
            return json_response(
                {
                    "ErrorCode": 406,
                    "Message": "You tried to send to a recipient that has been "
                    f"marked as inactive.\nFound inactive addresses: {to}.\n"
                    "Inactive recipients are ones that have generated a hard "
                    "bounce or a spam complaint.",
                },
                422,
            )
        return postmark_answer(request)

    fake = FakeProvider(answer)
    postmark.expect_request("/email", method="POST").respond_with_handler(fake)
    send = start(issue, 400)

    assert delivery.deliver_send(send_id=send.pk).next == "stopped"

    send.refresh_from_db()
    assert send.status == "paused"
    assert send.paused_reason.startswith("Hard-bounce rate ")
    counts = Delivery.objects.filter(send=send).counts()
    assert counts["sending"] == 0
    assert counts["queued"] >= 150  # claimed, never called, handed back
    assert not Delivery.objects.filter(send=send, status="queued").exclude(
        claimed_by=""
    )
    assert len(fake.requests) == counts["sent"] + counts["bounced"]
    assert send.accepted_count == counts["sent"]
    assert send.refused_count == counts["bounced"]
