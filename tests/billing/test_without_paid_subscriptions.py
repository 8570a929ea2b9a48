"""While Stripe is not configured, no page or email offers to buy a subscription."""

import pytest
from django.test import Client

from issues.models import Issue
from issues.sending import delivery, services
from subscribers.sessions import SESSION_KEY
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory
from tests.sending.conftest import parse
from tests.support.links import untracked

pytestmark = pytest.mark.django_db


@pytest.fixture
def issues(db):
    return {
        "mixed": IssueFactory(
            published=True, slug="mixed", title="Mixed",
            body="Free opening.\n\n<!-- paywall -->\n\nThe paid analysis.",
        ),
        "paid_only": IssueFactory(
            published=True, slug="paid-only", title="Paid only",
            access=Issue.Access.PAID, body="All for supporters.",
        ),
    }  # fmt: skip


def signed_in(subscriber) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    return client


def reader_pages(issues) -> list[tuple[Client, str]]:
    free = signed_in(SubscriberFactory(email="free@example.org"))
    canceled = SubscriberFactory(email="lapsed@example.org")
    MembershipFactory(
        subscriber=canceled, status="canceled", stripe_customer_id="cus_1"
    )
    lapsed = signed_in(canceled)
    pages = []
    for client in (Client(), free, lapsed):
        pages += [(client, "/"), (client, "/archive/"), (client, "/papers/")]
        pages += [(client, "/issues/mixed/"), (client, "/issues/paid-only/")]
    return pages + [(free, "/account/"), (lapsed, "/account/")]


def html(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_no_page_offers_to_buy_while_paid_subscriptions_are_not_set_up(issues):
    for client, url in reader_pages(issues):
        page = html(client, url)
        assert "/pricing/" not in page, url
        assert "Become a" not in page and ">Support<" not in page, url
        assert "Manage billing" not in page, url
    # The paywall still says why the rest is not shown.
    mixed = html(Client(), "/issues/mixed/")
    assert "The rest of this issue is for paying supporters" in mixed
    assert "The paid analysis" not in mixed


def test_pages_offer_to_buy_once_paid_subscriptions_are_set_up(issues, paid_enabled):
    reader = html(Client(), "/issues/mixed/")
    account = html(signed_in(SubscriberFactory()), "/account/")

    assert '<a href="/pricing/">Support</a>' in reader
    # The pricing page is told which issue the reader came from.
    assert 'href="/pricing/?from=/issues/mixed/">Become a supporter</a>' in reader
    assert 'href="/pricing/">Become a paying supporter</a>' in account


def test_staff_still_find_how_to_set_paid_subscriptions_up(admin_client):
    home = html(admin_client, "/")
    pricing = html(admin_client, "/pricing/")

    assert '<a href="/pricing/">Support</a>' in home
    assert "Paid subscriptions are not set up yet" in pricing
    assert "STRIPE_SECRET_KEY" in pricing


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    return settings.EMAIL_OUTBOX_DIR


def send_to_a_free_subscriber(issue, outbox) -> str:
    SubscriberFactory(email="free@example.org")
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    while delivery.deliver_send(send_id=send.pk).next == "more":
        pass
    (path,) = outbox.glob("*.eml")
    message = parse(path.read_bytes())
    # Links as the reader reaches them: a tracked one as where it leads.
    return untracked(
        message.get_body(("html",)).get_content()
        + message.get_body(("plain",)).get_content()
    )


def test_the_email_says_the_rest_is_for_supporters_without_a_buy_button(outbox):
    issue = IssueFactory(body="Free part.\n\n<!-- paywall -->\n\nPaid part.")

    body = send_to_a_free_subscriber(issue, outbox)

    assert "The rest of this issue is for paying supporters." in body
    assert "Paid part" not in body
    assert "Become a supporter" not in body and "/pricing/" not in body


def test_the_email_has_the_buy_button_once_paid_subscriptions_are_set_up(
    outbox, paid_enabled
):
    issue = IssueFactory(body="Free part.\n\n<!-- paywall -->\n\nPaid part.")

    body = send_to_a_free_subscriber(issue, outbox)

    assert "The rest of this issue is for paying supporters." in body
    assert "Become a supporter" in body and "/pricing/" in body
