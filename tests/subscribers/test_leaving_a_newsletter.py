"""An issue email's unsubscribe link leaves that issue's newsletter only, with
"leave all" next to it; the token says who, the issue only which newsletter."""

import pytest
from django.test import Client

from issues.analytics.reports import issue_report
from issues.sending import delivery, services
from newsletter.models import Newsletter
from subscribers.models import Subscriber, Subscription
from tests.analytics.conftest import buffer, flush  # noqa: F401
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lists():
    monthly = Newsletter.default()
    monthly.name = "The monthly issue"
    monthly.save()
    news = Newsletter.objects.create(name="Announcements", slug="news", position=1)
    return monthly, news


def sent(issue):
    """Publish the issue and freeze its audience: who was sent it is on record."""
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    return issue


def newsletters_of(subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber).values_list(
            "newsletter__slug", flat=True
        )
    )


def link(subscriber, issue=None) -> str:
    query = f"?issue={issue if isinstance(issue, int) else issue.pk}" if issue else ""
    return f"/unsubscribe/{subscriber.token}/{query}"


def one_click(path: str):
    # RFC 8058, as a mail provider sends it: no cookie, no CSRF token.
    return Client(enforce_csrf_checks=True).post(
        path, {"List-Unsubscribe": "One-Click"}
    )


def test_the_page_offers_leaving_the_issue_s_newsletter_and_all_and_changes_nothing(
    lists,
):
    monthly, news = lists
    reader = SubscriberFactory()
    issue = sent(IssueFactory(newsletter=monthly))

    page = Client().get(link(reader, issue)).content.decode()

    assert "Leave The monthly issue?" in page
    assert "You keep getting Announcements." in page
    assert "Leave all newsletters" in page
    assert 'name="scope" value="all"' in page
    assert "/account/" in page  # the preferences
    assert newsletters_of(reader) == {"newsletter", "news"}
    assert Subscriber.objects.get(pk=reader.pk).status == Subscriber.Status.ACTIVE


def test_one_click_leaves_only_the_issue_s_newsletter_and_counts_against_it(lists):
    monthly, news = lists
    reader, other = SubscriberFactory(), SubscriberFactory()
    issue = sent(IssueFactory(newsletter=news))

    response = one_click(link(reader, issue))

    assert response.status_code == 200
    page = response.content.decode()
    assert "You left Announcements" in page
    assert "You still get The monthly issue" in page
    assert "Leave all newsletters" in page
    # The page's "leave all" does not name the issue again: counted once already.
    assert f'action="/unsubscribe/{reader.token}/"' in page
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert newsletters_of(reader) == {"newsletter"}
    assert newsletters_of(other) == {"newsletter", "news"}
    assert "set-cookie" not in {k.lower() for k in response.headers}
    # Again (a provider's retry): nothing more left, nothing more counted.
    one_click(link(reader, issue))
    flush()
    assert issue_report(issue).unsubscribes == 1


def test_leave_all_next_to_it_unsubscribes_and_counts_once(lists):
    monthly, _ = lists
    reader = SubscriberFactory()
    issue = sent(IssueFactory(newsletter=monthly))

    response = Client().post(link(reader, issue), {"scope": "all"})

    assert "You are unsubscribed" in response.content.decode()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert reader.unsubscribed_at is not None
    assert not Subscriber.objects.receiving().filter(pk=reader.pk).exists()
    flush()
    assert issue_report(issue).unsubscribes == 1


def test_leaving_the_last_newsletter_one_gets_is_unsubscribing(lists):
    monthly, news = lists
    reader = SubscriberFactory()
    Subscription.objects.filter(subscriber=reader, newsletter=news).delete()
    issue = sent(IssueFactory(newsletter=monthly))
    # With nothing else to keep, the page asks the plain question, as before.
    asked = Client().get(link(reader, issue)).content.decode()
    assert f"Unsubscribe {reader.email} from" in asked
    assert "Leave all newsletters" not in asked

    page = one_click(link(reader, issue)).content.decode()

    assert "You are unsubscribed" in page
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert reader.unsubscribed_at is not None
    flush()
    assert issue_report(issue).unsubscribes == 1


def test_a_link_without_the_issue_leaves_all_as_before(lists):
    reader = SubscriberFactory()

    page = Client().get(link(reader)).content.decode()
    assert f"Unsubscribe {reader.email} from" in page
    Client().post(link(reader))

    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


@pytest.mark.parametrize("kind", ["no such issue", "an issue never sent to them"])
def test_an_issue_the_subscriber_was_not_sent_leaves_all_and_counts_nothing(
    lists, kind
):
    monthly, news = lists
    other = SubscriberFactory()
    elsewhere = sent(IssueFactory(newsletter=news))  # before the reader joined
    reader = SubscriberFactory()
    issue = 999_999 if kind == "no such issue" else elsewhere

    page = Client().get(link(reader, issue)).content.decode()
    assert f"Unsubscribe {reader.email} from" in page  # says it leaves all
    one_click(link(reader, issue))

    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    # Only the token's owner: the other recipient of the issue keeps everything.
    other.refresh_from_db()
    assert other.status == Subscriber.Status.ACTIVE
    assert newsletters_of(other) == {"newsletter", "news"}
    flush()
    assert issue_report(elsewhere).unsubscribes == 0


def test_an_unknown_token_changes_nobody(lists):
    monthly, _ = lists
    reader = SubscriberFactory()
    issue = sent(IssueFactory(newsletter=monthly))

    for body in ({"List-Unsubscribe": "One-Click"}, {"scope": "all"}):
        response = Client().post(f"/unsubscribe/not-a-token/?issue={issue.pk}", body)
        assert response.status_code == 200
        assert reader.email not in response.content.decode()

    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert newsletters_of(reader) == {"newsletter", "news"}


def test_after_leaving_the_link_says_so_and_still_offers_leaving_all(lists):
    monthly, _ = lists
    reader = SubscriberFactory()
    issue = sent(IssueFactory(newsletter=monthly))
    one_click(link(reader, issue))

    page = Client().get(link(reader, issue)).content.decode()

    assert "You already left The monthly issue" in page
    assert "Leave all newsletters" in page
