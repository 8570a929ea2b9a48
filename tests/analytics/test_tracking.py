"""Opens and clicks through the real pixel and redirect, into the issue's report."""

import base64

import pytest
from django.test import Client

from issues.analytics.models import Event
from issues.analytics.reports import issue_report
from newsletter.models import Publication
from subscribers.models import Subscriber
from tests.analytics.conftest import flush
from tests.analytics.helpers import (
    CHROME,
    IPHONE_MAIL,
    hidden_link,
    html_of,
    link_to,
    make_issue,
    pixel,
    send_issue,
    text_link_to,
    text_of,
    tracked_links,
)

pytestmark = pytest.mark.django_db


def test_a_reader_who_opens_twice_and_clicks_counts_once_as_a_person(outbox, client):
    issue = make_issue()
    messages = send_issue(issue, outbox, subscribers=2)
    message = messages["reader0@example.org"]

    assert client.get(pixel(message), HTTP_USER_AGENT=IPHONE_MAIL).status_code == 200
    client.get(pixel(message), HTTP_USER_AGENT=IPHONE_MAIL)
    code = "https://github.com/facebookresearch/ConvNeXt"
    response = client.get(link_to(message, code), HTTP_USER_AGENT=CHROME)
    flush()

    assert response.status_code == 302
    assert response["Location"] == code
    report = issue_report(issue)
    assert (report.delivered, report.unique_opens, report.opens) == (2, 1, 3)
    assert (report.unique_clicks, report.clicks) == (1, 1)
    assert (report.machine_opens, report.machine_clicks) == (0, 0)
    assert report.open_rate == 0.5
    assert [(p.title, p.unique_clicks) for p in report.papers] == [
        ("A ConvNet for the 2020s", 1)
    ]
    assert sum(h.unique_opens for h in report.hourly) == 1


def test_a_click_alone_counts_as_an_open(outbox, client):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]

    client.get(tracked_links(message)[0], HTTP_USER_AGENT=CHROME)
    flush()

    report = issue_report(issue)
    assert (report.unique_opens, report.unique_clicks) == (1, 1)


def test_a_click_in_the_plain_text_counts_for_the_same_link(outbox, client):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]
    blog = "https://blog.example.org/post"

    # The same address as the HTML's link: the same delivery, the same link number.
    assert text_link_to(message, blog) == link_to(message, blog)
    response = client.get(text_link_to(message, blog), HTTP_USER_AGENT=CHROME)
    flush()

    assert (response.status_code, response["Location"]) == (302, blog)
    report = issue_report(issue)
    assert (report.unique_opens, report.unique_clicks) == (1, 1)
    assert [(link.url, link.unique_clicks) for link in report.links] == [(blog, 1)]


def _with_url(part: str, url: str) -> str:
    send, number, _encoded, signature = part.split(".")
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return f"{send}.{number}.{encoded}.{signature}"


def test_forged_and_altered_links_redirect_nowhere_and_count_nothing(outbox, client):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]
    _, _, delivery, link, _ = tracked_links(message)[0].split("/")
    ident, signature = delivery.split(".")
    forged = [
        # Another delivery's id under this one's signature.
        f"/r/{int(ident) + 1}.{signature}/{link}/",
        # The signed link with someone else's address in it: no open redirect.
        f"/r/{delivery}/{_with_url(link, 'https://evil.example/login')}/",
        # Another link number, another send, a truncated signature, junk.
        f"/r/{delivery}/{link.replace('.1.', '.7.', 1)}/",
        f"/r/{delivery}/9{link}/",
        f"/r/{delivery}/{link[:-2]}/",
        "/r/1.x/2.3.aHR0cHM6Ly9ldmlsLmV4YW1wbGU.y/",
        f"/r/{delivery}/{link}.{link}/",
    ]
    for path in forged:
        response = client.get(path, HTTP_USER_AGENT=CHROME)
        assert response.status_code == 404, path
        assert "evil.example" not in response.get("Location", "")
    # A forged pixel still answers an image (mail shows no broken image) but counts
    # nothing.
    assert client.get(f"/o/{int(ident) + 1}.{signature}.gif").status_code == 200
    assert client.get("/o/1.AAAAAAAAAAAAAAAA.gif").status_code == 200
    # Only GET counts: a POST is refused.
    assert client.post(f"/r/{delivery}/{link}/").status_code == 405
    flush()

    assert Event.objects.count() == 0
    report = issue_report(issue)
    assert (report.opens, report.clicks, report.machine_opens) == (0, 0, 0)


def test_a_subscriber_with_tracking_off_gets_neither_pixel_nor_tracked_links(outbox):
    Subscriber.objects.create(
        email="private@example.org", status="active", tracking=False
    )
    messages = send_issue(make_issue(), outbox, subscribers=1)
    private = html_of(messages["private@example.org"])
    tracked = html_of(messages["reader0@example.org"])

    assert "/o/" not in private and "/r/" not in private
    assert 'href="https://blog.example.org/post"' in private
    assert "/o/" in tracked and "/r/" in tracked
    assert 'href="https://blog.example.org/post"' not in tracked
    private_text = text_of(messages["private@example.org"])
    tracked_text = text_of(messages["reader0@example.org"])
    assert "/r/" not in private_text
    assert "(https://blog.example.org/post)" in private_text
    assert "/r/" in tracked_text
    assert "(https://blog.example.org/post)" not in tracked_text


@pytest.mark.parametrize(
    ("opens", "clicks"), [(False, True), (True, False), (False, False)]
)
def test_the_publication_settings_turn_the_pixel_and_the_links_off(
    outbox, opens, clicks
):
    publication = Publication.load()
    publication.track_opens, publication.track_clicks = opens, clicks
    publication.save()
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]
    html, text = html_of(message), text_of(message)

    assert ("/o/" in html) is opens
    assert ("/r/" in html) is clicks
    assert ('href="https://blog.example.org/post"' in html) is not clicks
    assert ("/r/" in text) is clicks
    assert ("(https://blog.example.org/post)" in text) is not clicks


def test_the_hidden_link_is_out_of_sight_of_screen_readers_and_the_keyboard(outbox):
    issue = make_issue()
    message = send_issue(issue, outbox, subscribers=1)["reader0@example.org"]
    html = html_of(message)

    start = html.index('<div aria-hidden="true"')
    hidden = html[start : html.index("</div>", start)]
    assert "display:none" in hidden and 'tabindex="-1"' in hidden
    assert hidden_link(message) in tracked_links(message)


def test_the_consent_text_says_so_while_tracking_is_on(client):
    page = client.get("/subscribe/").content.decode()
    assert "which links are followed" in page

    publication = Publication.load()
    publication.track_opens = publication.track_clicks = False
    publication.save()
    page = Client().get("/subscribe/").content.decode()
    assert "counted per issue" not in page


def test_a_subscriber_turns_tracking_off_on_their_account_page_and_nobody_else(
    client,
):
    from subscribers.sessions import SESSION_KEY

    reader = Subscriber.objects.create(email="ada@example.org", status="active")
    # Not signed in: sent to sign in, nothing changes.
    outsider = Client().post("/account/tracking/", {"tracking": "0"})
    assert outsider.status_code == 302 and "/account/login/" in outsider["Location"]
    reader.refresh_from_db()
    assert reader.tracking is True

    session = client.session
    session[SESSION_KEY] = reader.pk
    session.save()
    assert "Turn tracking off" in client.get("/account/").content.decode()
    assert client.get("/account/tracking/").status_code == 405
    response = client.post("/account/tracking/", {"tracking": "0"})

    assert response.status_code == 302
    reader.refresh_from_db()
    assert reader.tracking is False
    assert "Allow tracking" in client.get("/account/").content.decode()
