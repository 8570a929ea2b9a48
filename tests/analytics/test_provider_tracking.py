"""Tracking through a provider's merged batch calls (anymail's Mailgun backend
against a local server answering as Mailgun does): one body with the pixel and the
tracked links per call, each recipient's signed part as a recipient variable, and
the recipients who turned tracking off in a call of their own without either."""

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from issues.analytics.reports import issue_report
from issues.sending import delivery, services
from issues.sending.emails.tracking import delivery_part
from issues.sending.models import Delivery
from subscribers.models import Subscriber
from tests.analytics.conftest import flush
from tests.analytics.helpers import CHROME, make_issue
from tests.sending.conftest import make_subscribers
from tests.sending.test_provider_batches import (  # noqa: F401 - the fixture
    MAILGUN_PATH,
    FakeProvider,
    mailgun,
    mailgun_accepts,
)

pytestmark = pytest.mark.django_db


def test_a_merged_call_tracks_those_who_allow_it_and_nobody_else(
    mailgun,  # noqa: F811 - the fixture imported above
    client,
):
    fake = FakeProvider(mailgun_accepts)
    mailgun.expect_request(MAILGUN_PATH, method="POST").respond_with_handler(fake)
    issue = make_issue()
    make_subscribers(5)
    Subscriber.objects.filter(email="reader3@example.org").update(tracking=False)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)

    assert delivery.deliver_send(send_id=send.pk).next == "done"

    assert Delivery.objects.filter(send=send, status="sent").count() == 5
    by_html = {
        "%recipient.quire_track%" in request.form["html"]: request
        for request in fake.requests
    }
    assert len(fake.requests) == 2 and set(by_html) == {True, False}
    tracked, untracked = by_html[True], by_html[False]
    assert untracked.form.getlist("to") == ["reader3@example.org"]
    assert "/o/" not in untracked.form["html"] and "/r/" not in untracked.form["html"]
    assert "/r/" not in untracked.form["text"]
    assert "quire_track" not in untracked.form["recipient-variables"]

    ids = dict(Delivery.objects.filter(send=send).values_list("email", "pk"))
    variables = json.loads(tracked.form["recipient-variables"])
    assert sorted(variables) == sorted(set(ids) - {"reader3@example.org"})
    for address, values in variables.items():
        assert values["quire_track"] == delivery_part(ids[address])

    # What Mailgun delivers to reader1: its own part in the pixel and every link.
    html = tracked.form["html"].replace(
        "%recipient.quire_track%", variables["reader1@example.org"]["quire_track"]
    )
    (pixel,) = {urlsplit(u).path for u in re.findall(r'src="([^"]*/o/[^"]+)"', html)}
    links = [urlsplit(u).path for u in re.findall(r'href="([^"]*/r/[^"]+)"', html)]
    assert links, "no tracked link in the merged body"
    Delivery.objects.update(sent_at=timezone.now() - timedelta(minutes=60))
    assert client.get(pixel, HTTP_USER_AGENT=CHROME).status_code == 200
    assert client.get(links[0], HTTP_USER_AGENT=CHROME).status_code == 302
    flush()

    report = issue_report(issue)
    assert (report.unique_opens, report.unique_clicks) == (1, 1)

    # The text part's links are the HTML's, with the same signed part merged in.
    text = tracked.form["text"].replace(
        "%recipient.quire_track%", variables["reader1@example.org"]["quire_track"]
    )
    in_text = [
        urlsplit(u).path for u in re.findall(r"https?://[^\s()]+/r/[^\s()]+", text)
    ]
    assert in_text and set(in_text) <= set(links)
