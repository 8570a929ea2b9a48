"""Response headers (Content-Security-Policy) and email headers (From, names)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from newsletter.models import Publication
from subscribers.billing.emails import send_billing_email
from subscribers.billing.models import Membership, Tier
from subscribers.models import Subscriber
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def author_client() -> Client:
    client = Client()
    client.force_login(
        get_user_model().objects.create_superuser("author", "a@example.org", "pw")
    )
    return client


def _publish(author_client, django_capture_on_commit_callbacks, **issue_fields):
    issue = IssueFactory(**issue_fields)
    with django_capture_on_commit_callbacks(execute=True):
        response = author_client.post(reverse("admin:sending_publish", args=[issue.pk]))
    assert response.status_code == 302
    return issue


# --- Email senders -----------------------------------------------------------------


def test_default_from_email_is_the_sender_until_the_publication_names_one(
    author_client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Research Notes <news@example.org>"
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.message["From"] == "Research Notes <news@example.org>"
    assert received.mail_from == "news@example.org"
    assert "<mailto:news@example.org?" in received.message["List-Unsubscribe"]


def test_a_sender_set_in_the_admin_replaces_default_from_email(
    author_client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Research Notes <news@example.org>"
    Publication.objects.update_or_create(
        pk=1, defaults={"sender_name": "Ada", "sender_email": "ada@papers.example"}
    )
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.message["From"] == "Ada <ada@papers.example>"
    assert received.mail_from == "ada@papers.example"


def test_without_a_name_in_default_from_email_mail_carries_the_publications(
    author_client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "quire@localhost"
    Publication.objects.update_or_create(pk=1, defaults={"name": "Gradient Notes"})
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.message["From"] == "Gradient Notes <quire@localhost>"


def test_a_new_publication_has_no_sender_address_of_its_own():
    assert Publication.load().sender_email == ""


def _publication_form(**overrides) -> dict:
    data = {
        "name": "Papers Weekly",
        "description": "",
        "sender_name": "",
        "sender_email": "",
        "postal_address": "",
        "welcome_email": "",
        "consent_text": Publication.load().consent_text,
    }
    data.update(overrides)
    return data


def _change_publication(author_client, **fields):
    url = reverse("admin:newsletter_publication_change", args=[Publication.load().pk])
    return author_client.post(url, _publication_form(**fields))


def test_a_sender_address_with_non_ascii_before_the_at_is_refused(author_client):
    before = Publication.load().sender_email

    response = _change_publication(author_client, sender_email="ünï@exämple.org")

    assert response.status_code == 200
    assert "only plain letters, digits and . _ + - before the @" in (
        response.content.decode()
    )
    assert Publication.load().sender_email == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Papers Weekly\r\nBcc: everyone@example.org"),
        ("sender_name", "Ada\nBcc: everyone@example.org"),
    ],
)
def test_a_publication_name_on_two_lines_is_refused(author_client, field, value):
    response = _change_publication(author_client, **{field: value})

    assert response.status_code == 200
    assert "Write it on one line" in response.content.decode()
    assert getattr(Publication.load(), field) != value


def test_a_tier_name_on_two_lines_is_refused(author_client):
    response = author_client.post(
        reverse("admin:billing_tier_add"),
        {
            "name": "Supporter\r\nBcc: everyone@example.org",
            "slug": "supporter",
            "description": "",
            "benefits": "",
            "position": "0",
            "currency": "usd",
            "monthly_amount": "800",
            "yearly_amount": "",
            "trial_days": "0",
            "active": "on",
        },
    )

    assert response.status_code == 200
    assert "Write it on one line" in response.content.decode()
    assert not Tier.objects.exists()


def test_an_international_domain_is_sent_from_in_its_ascii_form(
    author_client, smtp_settings, django_capture_on_commit_callbacks
):
    response = _change_publication(
        author_client, sender_name="Zoë", sender_email="ada@exämple.org"
    )
    assert response.status_code == 302
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.mail_from == "ada@xn--exmple-cua.org"
    assert received.message["From"].addresses[0].display_name == "Zoë"
    assert received.message["From"].addresses[0].addr_spec == ("ada@xn--exmple-cua.org")
    assert b"=?utf-8?" in received.raw.split(b"\r\n\r\n")[0]  # RFC 2047, not raw


HOSTILE = {
    "name": "Papers\r\nBcc: everyone@example.org",
    "sender_name": "Ünï Nämé\nBcc: everyone@example.org",
    "sender_email": "ünï@exämple.org\r\nBcc: everyone@example.org",
}


def test_mail_still_goes_out_with_hostile_sender_values_stored_in_the_database(
    author_client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Research Notes <news@example.org>"
    Publication.objects.update_or_create(pk=1, defaults=HOSTILE)
    SubscriberFactory(email="reader@example.org")

    _publish(author_client, django_capture_on_commit_callbacks, title="First")

    (received,) = smtp_settings.messages
    assert received.rcpt_tos == ["reader@example.org"]
    assert received.mail_from == "news@example.org"
    sender = received.message["From"].addresses[0]
    assert sender.addr_spec == "news@example.org"
    assert sender.display_name == "Ünï Nämé Bcc: everyone@example.org"
    assert received.message["Bcc"] is None
    assert received.message["List-Id"] == "Papers Bcc: everyone@example.org" + (
        " <newsletter.example.org>"
    )


def test_account_emails_still_go_out_with_hostile_values_stored(
    client, settings, smtp_settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Research Notes <news@example.org>"
    Publication.objects.update_or_create(pk=1, defaults=HOSTILE)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("subscribers:subscribe"), {"email": "new@example.org"})

    (received,) = smtp_settings.messages
    assert received.rcpt_tos == ["new@example.org"]
    assert received.message["Subject"] == (
        "Confirm your subscription to Papers Bcc: everyone@example.org"
    )
    assert received.message["From"].addresses[0].addr_spec == "news@example.org"
    assert received.message["Bcc"] is None
    assert Subscriber.objects.get(email="new@example.org").status == "pending"


def test_billing_emails_still_go_out_with_a_hostile_tier_name_stored(smtp_settings):
    tier = Tier.objects.create(name="Supporter", slug="supporter", monthly_amount=800)
    Tier.objects.filter(pk=tier.pk).update(name="Supporter\r\nBcc: all@example.org")
    member = SubscriberFactory(email="member@example.org")
    membership = Membership.objects.create(subscriber=member, tier=tier)

    send_billing_email(membership_pk=membership.pk, kind="welcome", extra={})

    (received,) = smtp_settings.messages
    assert received.rcpt_tos == ["member@example.org"]
    assert received.message["Subject"] == (
        "Welcome to Supporter Bcc: all@example.org: thank you for your support"
    )
    assert received.message["Bcc"] is None


def test_a_pending_subscriber_can_still_be_confirmed_by_email_after_a_bad_save(
    settings, smtp_settings
):
    settings.DEFAULT_FROM_EMAIL = "quire@localhost"
    Publication.objects.update_or_create(pk=1, defaults={"sender_email": "not an @"})
    pending = PendingSubscriberFactory(email="pending@example.org")
    from subscribers.services import send_confirmation_email

    assert send_confirmation_email(subscriber_id=pending.pk)

    (received,) = smtp_settings.messages
    assert received.message["From"].addresses[0].addr_spec == "quire@localhost"
