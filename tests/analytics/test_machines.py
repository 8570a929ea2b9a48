"""Each machine rule, from a request as that machine sends it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from issues.analytics.models import Event
from issues.analytics.reports import issue_report
from issues.sending.models import Delivery
from tests.analytics.conftest import flush
from tests.analytics.helpers import (
    APPLE_PROXY,
    BINGBOT,
    CHROME,
    GMAIL_PROXY,
    IPHONE_MAIL,
    OUTLOOK,
    REQUESTS,
    SCANNER,
    YAHOO_PROXY,
    hidden_link,
    make_issue,
    pixel,
    send_issue,
    tracked_links,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("agent", "address", "reason"),
    [
        # Apple Mail Privacy Protection: from Apple's network, "Mozilla/5.0" only.
        (APPLE_PROXY, "17.58.63.125", "apple-privacy-proxy"),
        # The same bare agent from anywhere else is no mail program either.
        (APPLE_PROXY, "203.0.113.9", "apple-privacy-proxy"),
        # A browser-like agent from Apple's network that is no Apple device.
        (CHROME, "17.58.63.125", "apple-privacy-proxy"),
        (GMAIL_PROXY, "66.249.84.12", "gmail-image-proxy"),
        (YAHOO_PROXY, "98.137.11.163", "yahoo-proxy"),
        (OUTLOOK, "40.94.26.1", "outlook-proxy"),
        (SCANNER, "64.235.150.1", "scanner"),
        (BINGBOT, "40.77.167.1", "bot"),
        (REQUESTS, "198.51.100.4", "program"),
        ("", "198.51.100.4", "no-user-agent"),
    ],
)
def test_an_open_by_a_proxy_or_program_is_a_machine_open(
    outbox, client, agent, address, reason
):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]

    client.get(pixel(message), HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    flush()

    event = Event.objects.get()
    assert (event.machine, event.reason) == (True, reason)
    report = issue_report(issue)
    assert (report.unique_opens, report.opens, report.machine_opens) == (0, 0, 1)


@pytest.mark.parametrize(
    ("agent", "address"),
    # An iPhone on Apple's own network is still a person.
    [(CHROME, "203.0.113.7"), (IPHONE_MAIL, "17.58.63.125")],
)
def test_an_open_by_a_reader_s_mail_program_is_a_person(outbox, client, agent, address):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]

    client.get(pixel(message), HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    flush()

    assert Event.objects.get().machine is False
    assert issue_report(issue).unique_opens == 1


def test_a_click_seconds_after_delivery_is_a_link_scanner(outbox, client):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]
    Delivery.objects.update(sent_at=timezone.now() - timedelta(seconds=2))

    # Security gateways click with a browser's agent, right as the mail arrives.
    client.get(tracked_links(message)[0], HTTP_USER_AGENT=CHROME)
    flush()

    assert Event.objects.get().reason == "click-right-after-delivery"
    report = issue_report(issue)
    assert (report.unique_clicks, report.unique_opens, report.machine_clicks) == (
        0,
        0,
        1,
    )


def test_whatever_follows_the_hidden_link_is_a_machine(outbox, client):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]

    client.get(pixel(message), HTTP_USER_AGENT=CHROME)
    client.get(tracked_links(message)[3], HTTP_USER_AGENT=CHROME)
    client.get(hidden_link(message), HTTP_USER_AGENT=CHROME)
    flush()

    assert set(Event.objects.values_list("reason", flat=True)) == {"hidden-link"}
    report = issue_report(issue)
    assert (report.unique_opens, report.unique_clicks) == (0, 0)
    assert (report.machine_opens, report.machine_clicks) == (1, 2)


def test_every_link_at_once_cut_in_two_by_a_flush_is_still_a_machine(outbox, client):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=2)
    scanned, read = message["reader0@example.org"], message["reader1@example.org"]
    links = [
        p for p in dict.fromkeys(tracked_links(scanned)) if p != hidden_link(scanned)
    ]
    client.get(tracked_links(read)[3], HTTP_USER_AGENT=CHROME)
    client.get(pixel(scanned), HTTP_USER_AGENT=CHROME)  # the pixel: before the links
    for path in links[:2]:
        client.get(path, HTTP_USER_AGENT=CHROME)
    flush()  # what the scanner followed so far looks like a person's
    assert issue_report(issue).unique_clicks == 2
    for path in links[2:]:
        client.get(path, HTTP_USER_AGENT=CHROME)
    flush()

    report = issue_report(issue)
    assert (report.unique_clicks, report.clicks) == (1, 1)  # the reader's only
    assert (report.unique_opens, report.opens) == (2, 2)  # the pixel, and the reader
    assert report.machine_clicks == len(links) == 5
    clicked = [
        (link.clicks, link.unique_clicks) for link in report.links if link.clicks
    ]
    assert clicked == [(1, 1)]
    assert set(Event.objects.filter(machine=True).values_list("reason", flat=True)) == {
        "every-link-at-once"
    }
    hours = report.hourly
    assert sum(h.unique_clicks for h in hours) == 1
    assert sum(h.machine for h in hours) == 5


def test_every_link_followed_within_seconds_is_a_machine(outbox, client):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=2)
    scanned, read = message["reader0@example.org"], message["reader1@example.org"]

    for path in dict.fromkeys(tracked_links(scanned)):
        if path != hidden_link(scanned):
            client.get(path, HTTP_USER_AGENT=CHROME)
    client.get(tracked_links(read)[3], HTTP_USER_AGENT=CHROME)
    flush()

    report = issue_report(issue)
    assert report.unique_clicks == 1  # only the reader who picked one link
    assert report.machine_clicks == 5
    assert set(Event.objects.filter(machine=True).values_list("reason", flat=True)) == {
        "every-link-at-once"
    }
