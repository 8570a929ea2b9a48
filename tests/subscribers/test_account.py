import json

import pytest
from django.urls import reverse

from subscribers import services
from subscribers.models import Subscriber, Suppression, hash_email
from subscribers.sessions import current_subscriber
from tests.factories.subscribers import SubscriberFactory

from .conftest import link_in

pytestmark = pytest.mark.django_db

ACCOUNT = "/account/"
LOGIN = "/account/login/"


def sign_in(client, commit, mailoutbox, email):
    with commit():
        client.post(LOGIN, {"email": email})
    path = link_in(mailoutbox[-1], r"/account/login/\S+/")
    return client.post(path)


def test_the_account_page_needs_a_signed_in_subscriber(client):
    response = client.get(ACCOUNT)

    assert response.status_code == 302
    assert response["Location"] == LOGIN


def test_a_magic_link_signs_the_subscriber_in(client, commit, mailoutbox):
    SubscriberFactory(email="ada@example.org", name="Ada")

    with commit():
        response = client.post(LOGIN, {"email": "ADA@example.org"})
    assert response.status_code == 200
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["ada@example.org"]
    path = link_in(mailoutbox[0], r"/account/login/\S+/")
    # GET only shows a button (scanners must not sign in).
    assert b"<button" in client.get(path).content
    assert client.get(ACCOUNT).status_code == 302

    response = client.post(path)

    assert response.status_code == 302 and response["Location"] == ACCOUNT
    page = client.get(ACCOUNT).content.decode()
    assert "ada@example.org" in page and "Active" in page
    # The link works once.
    client.post(reverse("subscribers:logout"))
    assert client.post(path).status_code == 404


def test_login_gives_the_same_answer_for_unknown_addresses(client, commit, mailoutbox):
    SubscriberFactory(email="ada@example.org")

    with commit():
        known = client.post(LOGIN, {"email": "ada@example.org"})
        unknown = client.post(LOGIN, {"email": "nobody@example.org"})

    assert known.status_code == unknown.status_code == 200
    assert known.content.replace(b"ada@", b"X@") == unknown.content.replace(
        b"nobody@", b"X@"
    )
    assert [m.to for m in mailoutbox] == [["ada@example.org"]]


def test_sessions_contract_signs_in_and_out(rf, client, commit, mailoutbox):
    sub = SubscriberFactory(email="ada@example.org")
    sign_in(client, commit, mailoutbox, "ada@example.org")
    request = rf.get("/")
    request.session = client.session

    assert current_subscriber(request) == sub

    client.post(reverse("subscribers:logout"))
    request = rf.get("/")
    request.session = client.session
    assert current_subscriber(request) is None


def test_pause_toggle_stops_and_resumes_emails(client, commit, mailoutbox):
    sub = SubscriberFactory(email="ada@example.org")
    sign_in(client, commit, mailoutbox, "ada@example.org")

    client.post(reverse("subscribers:pause"), {"paused": "1"})
    assert not Subscriber.objects.receiving().exists()
    assert "(paused)" in client.get(ACCOUNT).content.decode()

    client.post(reverse("subscribers:pause"), {"paused": "0"})
    assert list(Subscriber.objects.receiving()) == [sub]


def test_changing_the_name(client, commit, mailoutbox):
    sub = SubscriberFactory(email="ada@example.org")
    sign_in(client, commit, mailoutbox, "ada@example.org")

    client.post(ACCOUNT, {"name": "Ada Lovelace"})

    sub.refresh_from_db()
    assert sub.name == "Ada Lovelace"


def test_unsubscribe_and_come_back_from_the_account_page(client, commit, mailoutbox):
    sub = SubscriberFactory(email="ada@example.org")
    sign_in(client, commit, mailoutbox, "ada@example.org")

    client.post(reverse("subscribers:account_unsubscribe"))
    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.UNSUBSCRIBED

    with commit():
        client.post(reverse("subscribers:resubscribe"))
    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.PENDING
    assert "Confirm" in mailoutbox[-1].subject


def test_export_my_data_includes_the_consent_record(client, commit, mailoutbox):
    SubscriberFactory(
        email="ada@example.org",
        name="Ada",
        consent_ip="198.51.100.1",
        consent_user_agent="Firefox",
        consent_text_version="3",
    )
    sign_in(client, commit, mailoutbox, "ada@example.org")

    response = client.get(reverse("subscribers:export"))

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["email"] == "ada@example.org" and data["name"] == "Ada"
    assert data["status"] == "active"
    assert data["consent"]["ip"] == "198.51.100.1"
    assert data["consent"]["user_agent"] == "Firefox"
    assert data["consent"]["consent_text_version"] == "3"
    assert data["consent"]["source"] == "form:/subscribe/"


def test_delete_me_erases_the_record_and_keeps_only_a_hash(client, commit, mailoutbox):
    SubscriberFactory(email="ada@example.org", name="Ada")
    sign_in(client, commit, mailoutbox, "ada@example.org")

    refused = client.post(reverse("subscribers:delete"))
    assert refused.status_code == 302 and Subscriber.objects.exists()

    response = client.post(reverse("subscribers:delete"), {"confirm": "yes"})

    assert response.status_code == 200
    assert not Subscriber.objects.exists()
    suppression = Suppression.objects.get()
    assert suppression.email_hash == hash_email("ada@example.org")
    assert suppression.reason == "deleted"
    assert client.get(ACCOUNT).status_code == 302
    # The address cannot come back through the form.
    with commit():
        client.post("/subscribe/", {"email": "ada@example.org"})
    assert not Subscriber.objects.exists()


def test_suppress_address_marks_a_bounce_and_keeps_it_out(db):
    sub = SubscriberFactory(email="ada@example.org")

    services.suppress_address(email="ADA@example.org", reason="bounced")

    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.BOUNCED
    assert not Subscriber.objects.receiving().exists()
    # Even if something flips the status back, the suppression keeps it out.
    Subscriber.objects.update(status=Subscriber.Status.ACTIVE)
    assert not Subscriber.objects.receiving().exists()


def test_receiving_is_active_unpaused_and_unsuppressed(db):
    active = SubscriberFactory()
    SubscriberFactory(paused=True)
    SubscriberFactory(status=Subscriber.Status.PENDING)
    SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    SubscriberFactory(status=Subscriber.Status.COMPLAINED)

    assert list(Subscriber.objects.receiving()) == [active]
    assert "EXISTS" in str(Subscriber.objects.receiving().values("pk").query)


def test_email_is_unique_ignoring_case(db):
    from django.db import IntegrityError

    SubscriberFactory(email="Ada@Example.org")
    assert Subscriber.objects.get().email == "ada@example.org"
    with pytest.raises(IntegrityError):
        SubscriberFactory(email="ADA@example.ORG")
