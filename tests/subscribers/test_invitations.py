"""Staff add an address and Quire sends it the double opt-in email."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from newsletter.models import Newsletter
from subscribers.models import Label, Subscriber, Suppression, hash_email
from tests.conftest import wait_for
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory

from .conftest import link_in

pytestmark = pytest.mark.django_db

INVITE = reverse("admin:subscribers_subscriber_invite")
CHANGELIST = reverse("admin:subscribers_subscriber_changelist")


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("author", "a@example.org", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def lists(db):
    monthly = Newsletter.default()
    news = Newsletter.objects.create(
        name="Announcements", slug="news", join_by_default=False, position=2
    )
    return monthly, news


def test_an_invited_address_is_pending_and_gets_the_confirmation_email(
    staff, lists, commit, mailoutbox
):
    monthly, news = lists
    Label.objects.create(name="VIP")

    with commit():
        response = staff.post(
            INVITE,
            {
                "email": " Ada@Example.org ",
                "name": "Ada",
                "newsletters": [news.pk],
                "labels": [Label.objects.get().pk],
                "new_labels": "conference",
            },
        )

    ada = Subscriber.objects.get(email="ada@example.org")
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:subscribers_subscriber_change", args=[ada.pk]
    )
    assert ada.status == "pending" and ada.source == "admin"
    assert ada.consent_source == "admin:author" and ada.consent_at is not None
    assert ada.name == "Ada"
    assert list(ada.newsletters.all()) == [news]  # the choice, not the defaults
    assert set(ada.labels.values_list("name", flat=True)) == {"VIP", "conference"}
    (email,) = mailoutbox
    assert email.to == ["ada@example.org"]
    assert "invites you" in email.body
    # Nothing else reaches them until they follow the link.
    assert not Subscriber.objects.receiving().exists()
    path = link_in(email, r"/subscribe/confirm/\S+/")
    staff.post(path)
    assert Subscriber.objects.receiving(newsletter=news.pk).get() == ada


def test_an_active_address_is_told_and_not_emailed(staff, lists, commit, mailoutbox):
    SubscriberFactory(email="ada@example.org")

    with commit():
        response = staff.post(INVITE, {"email": "ada@example.org"})

    assert response.status_code == 400
    assert "is subscribed already" in response.content.decode()
    assert mailoutbox == []


@pytest.mark.parametrize("reason", ["bounced", "complained", "deleted"])
def test_a_suppressed_address_is_refused(staff, lists, commit, mailoutbox, reason):
    Suppression.objects.create(email_hash=hash_email("gone@example.org"), reason=reason)

    with commit():
        response = staff.post(INVITE, {"email": "gone@example.org"})

    assert response.status_code == 400
    assert "suppression list" in response.content.decode()
    assert not Subscriber.objects.exists() and mailoutbox == []


def test_someone_who_unsubscribed_is_not_invited_back(staff, lists, commit, mailoutbox):
    SubscriberFactory(email="left@example.org", status="unsubscribed")

    with commit():
        response = staff.post(INVITE, {"email": "left@example.org"})

    assert "only they can subscribe again" in response.content.decode()
    assert Subscriber.objects.get().status == "unsubscribed" and mailoutbox == []


def test_inviting_twice_in_a_day_sends_one_email(staff, lists, commit, mailoutbox):
    with commit():
        staff.post(INVITE, {"email": "ada@example.org"})
    with commit():
        again = staff.post(INVITE, {"email": "ada@example.org"}, follow=True)

    assert "nothing was sent again" in again.content.decode()
    assert len(mailoutbox) == 1


def test_a_malformed_address_is_refused_on_the_form(staff, lists, mailoutbox):
    response = staff.post(INVITE, {"email": "ada@@example.org\r\nBcc: x@evil.example"})

    assert response.status_code == 400
    assert not Subscriber.objects.exists() and mailoutbox == []


def test_the_bulk_invitation_emails_the_pending_ones_once(
    staff, lists, commit, mailoutbox
):
    imported = PendingSubscriberFactory(
        email="imported@example.org", consent_source="", consent_at=None
    )
    active = SubscriberFactory(email="active@example.org")
    gone = PendingSubscriberFactory(email="gone@example.org")
    Suppression.objects.create(email_hash=hash_email(gone.email), reason="complained")

    with commit():
        staff.post(
            CHANGELIST,
            {
                "action": "send_invitation",
                "_selected_action": [imported.pk, active.pk, gone.pk],
            },
        )
    with commit():  # a second time the same day sends nothing
        staff.post(
            CHANGELIST,
            {"action": "send_invitation", "_selected_action": [imported.pk]},
        )

    assert [m.to for m in mailoutbox] == [["imported@example.org"]]
    imported.refresh_from_db()
    assert imported.consent_source == "admin:author"


@pytest.fixture
def viewer(client):
    user = get_user_model().objects.create_user("intern", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_subscriber"])
    )
    client.force_login(user)
    return client


def test_staff_without_the_permissions_invite_nobody(viewer, lists, mailoutbox):
    pending = PendingSubscriberFactory(email="p@example.org")

    assert viewer.get(INVITE).status_code == 403
    assert viewer.post(INVITE, {"email": "new@example.org"}).status_code == 403
    bulk = viewer.post(
        CHANGELIST,
        {"action": "send_invitation", "_selected_action": [pending.pk], "index": 0},
    )

    assert bulk.status_code == 403
    assert list(Subscriber.objects.values_list("email", flat=True)) == [pending.email]
    assert mailoutbox == []


def test_an_outsider_invites_nobody(client, lists, mailoutbox):
    response = client.post(INVITE, {"email": "new@example.org"})

    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Subscriber.objects.exists() and mailoutbox == []


@pytest.mark.django_db(transaction=True)
def test_an_invitation_travels_through_the_worker_and_smtp(
    client, smtp_server, celery_worker_factory
):
    celery_worker_factory(
        extra_env={"EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}"}
    )
    user = get_user_model().objects.create_superuser("ed", "ed@example.org", "pw")
    client.force_login(user)

    response = client.post(INVITE, {"email": "grace@example.org"})
    assert response.status_code == 302

    received = wait_for(lambda: smtp_server.messages, timeout=60, message="email")
    assert len(received) == 1 and received[0].rcpt_tos == ["grace@example.org"]
    text = received[0].message.get_body(preferencelist=("plain",)).get_content()
    assert "invites you" in text
    client.post(link_in(text, r"/subscribe/confirm/\S+/"))
    assert Subscriber.objects.receiving().get().email == "grace@example.org"
