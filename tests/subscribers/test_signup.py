from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Publication
from subscribers.models import Subscriber, Suppression, hash_email
from subscribers.sessions import SESSION_KEY
from tests.factories.subscribers import PendingSubscriberFactory, SubscriberFactory

from .conftest import link_in

pytestmark = pytest.mark.django_db

SUBSCRIBE = "/subscribe/"


def post_subscribe(client, commit, email, **extra):
    with commit():
        return client.post(
            SUBSCRIBE,
            {"email": email, "name": extra.pop("name", ""), "page": "/", **extra},
            HTTP_USER_AGENT="Mozilla/5.0 test",
            REMOTE_ADDR=extra.pop("ip", "198.51.100.7"),
        )


def test_subscribe_page_shows_the_form_with_a_honeypot_and_the_consent_text(client):
    response = client.get(SUBSCRIBE)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="email"' in html and 'name="website"' in html
    assert Publication.load().consent_text in html


def test_signing_up_creates_a_pending_subscriber_with_a_consent_record(
    client, commit, mailoutbox
):
    response = post_subscribe(client, commit, "  Ada@Example.ORG ", name="Ada")

    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    sub = Subscriber.objects.get()
    assert sub.email == "ada@example.org"
    assert sub.status == Subscriber.Status.PENDING
    assert sub.name == "Ada"
    assert sub.source == Subscriber.Source.FORM
    assert sub.consent_ip == "198.51.100.7"
    assert sub.consent_user_agent == "Mozilla/5.0 test"
    assert sub.consent_source == "form:/"
    assert sub.consent_text_version == str(Publication.load().consent_text_version)
    assert sub.consent_at is not None
    assert not Subscriber.objects.receiving().exists()
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ada@example.org"]
    assert "Confirm" in message.subject
    html = message.alternatives[0][0]
    assert "/subscribe/confirm/" in message.body and "/subscribe/confirm/" in html


def test_an_invalid_address_is_refused_with_the_reason(client, commit, mailoutbox):
    response = post_subscribe(client, commit, "not-an-address")

    assert response.status_code == 400
    assert b"@-sign" in response.content
    assert not Subscriber.objects.exists()
    assert mailoutbox == []


def test_the_answer_is_the_same_whatever_the_address_state(client, commit):
    SubscriberFactory(email="active@example.org")
    PendingSubscriberFactory(email="pending@example.org")
    SubscriberFactory(email="left@example.org", status=Subscriber.Status.UNSUBSCRIBED)
    Suppression.objects.create(
        email_hash=hash_email("gone@example.org"), reason="deleted"
    )

    def page(email):
        response = post_subscribe(client, commit, email)
        return response.status_code, response.content.decode().replace(email, "X")

    answers = {
        page(email)
        for email in (
            "new@example.org",
            "active@example.org",
            "pending@example.org",
            "left@example.org",
            "gone@example.org",
        )
    }
    assert len(answers) == 1
    assert answers.pop()[0] == 200


def test_the_honeypot_stops_bots_without_telling_them(client, commit, mailoutbox):
    response = post_subscribe(client, commit, "bot@example.org", website="http://spam")

    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    assert not Subscriber.objects.exists()
    assert mailoutbox == []


def test_one_ip_is_rate_limited(client, commit):
    for n in range(20):
        assert post_subscribe(client, commit, f"r{n}@example.org").status_code == 200

    response = post_subscribe(client, commit, "one-too-many@example.org")

    assert response.status_code == 429
    assert not Subscriber.objects.filter(email="one-too-many@example.org").exists()
    other_ip = post_subscribe(client, commit, "elsewhere@example.org", ip="203.0.113.9")
    assert other_ip.status_code == 200


def test_one_address_is_rate_limited_silently(client, commit):
    for n in range(5):
        post_subscribe(client, commit, "target@example.org", ip=f"203.0.113.{n}")
    Subscriber.objects.filter(email="target@example.org").update(
        confirmation_sent_at=timezone.now() - timedelta(days=2)
    )

    response = post_subscribe(client, commit, "target@example.org", ip="203.0.113.99")

    assert response.status_code == 200
    sub = Subscriber.objects.get(email="target@example.org")
    # The sixth attempt in the hour did nothing: no new confirmation email queued.
    assert sub.confirmation_sent_at < timezone.now() - timedelta(days=1)


def test_at_most_one_confirmation_email_per_address_per_day(client, commit, mailoutbox):
    post_subscribe(client, commit, "ada@example.org")
    post_subscribe(client, commit, "ADA@example.org", ip="203.0.113.1")
    assert len(mailoutbox) == 1

    Subscriber.objects.update(confirmation_sent_at=timezone.now() - timedelta(hours=25))
    post_subscribe(client, commit, "ada@example.org", ip="203.0.113.2")
    assert len(mailoutbox) == 2
    # Both links work: the pending link is not replaced by the reminder.
    assert link_in(mailoutbox[0], r"/subscribe/confirm/\S+/") != ""


def test_confirm_link_get_shows_a_button_and_changes_nothing(
    client, commit, mailoutbox
):
    post_subscribe(client, commit, "ada@example.org")
    path = link_in(mailoutbox[0], r"/subscribe/confirm/\S+/")

    response = client.get(path)

    assert response.status_code == 200
    assert b"<button" in response.content and b"Confirm" in response.content
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_confirm_post_activates_and_sends_the_welcome_email(client, commit, mailoutbox):
    publication = Publication.load()
    publication.welcome_email = "Hello from the lab.\n\nFirst issue soon."
    publication.save()
    post_subscribe(client, commit, "ada@example.org")
    path = link_in(mailoutbox[0], r"/subscribe/confirm/\S+/")

    with commit():
        response = client.post(path)

    assert response.status_code == 200
    assert b"subscribed" in response.content
    sub = Subscriber.objects.get()
    assert sub.status == Subscriber.Status.ACTIVE
    assert sub.confirmed_at is not None
    assert list(Subscriber.objects.receiving()) == [sub]
    welcome = mailoutbox[1]
    assert welcome.to == ["ada@example.org"]
    assert "Hello from the lab." in welcome.body
    assert "<p>Hello from the lab.</p>" in welcome.alternatives[0][0]
    # Confirming signs the person in.
    assert client.get(reverse("subscribers:account")).status_code == 200


def test_a_confirm_link_works_once(client, commit, mailoutbox):
    post_subscribe(client, commit, "ada@example.org")
    path = link_in(mailoutbox[0], r"/subscribe/confirm/\S+/")
    with commit():
        client.post(path)
    Subscriber.objects.update(status=Subscriber.Status.PENDING)

    again = client.post(path)

    assert again.status_code == 404
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_a_reused_confirm_link_says_already_confirmed_and_changes_nothing(
    client, commit, mailoutbox
):
    post_subscribe(client, commit, "ada@example.org")
    path = link_in(mailoutbox[0], r"/subscribe/confirm/\S+/")
    with commit():
        client.post(path)
    confirmed = Subscriber.objects.values_list(
        "status", "confirmed_at", "confirmation_nonce"
    ).get()
    elsewhere = Client()  # the link forwarded, or opened in another browser

    with commit():
        shown = elsewhere.get(path)
        posted = elsewhere.post(path)

    for response in (shown, posted):
        assert response.status_code == 200
        page = response.content.decode()
        assert "You're already confirmed" in page
        assert "ada@example.org is subscribed" in page
        assert ">Confirm</button>" not in page
    assert (
        Subscriber.objects.values_list(
            "status", "confirmed_at", "confirmation_nonce"
        ).get()
        == confirmed
    )
    assert len(mailoutbox) == 2  # the confirmation and one welcome, nothing more
    # A reused link signs nobody in.
    assert SESSION_KEY not in elsewhere.session
    assert elsewhere.get(reverse("subscribers:account")).status_code == 302


def test_a_reused_confirm_link_does_not_bring_back_someone_who_left(
    client, commit, mailoutbox
):
    post_subscribe(client, commit, "ada@example.org")
    path = link_in(mailoutbox[0], r"/subscribe/confirm/\S+/")
    with commit():
        client.post(path)
    sub = Subscriber.objects.get()
    client.post(reverse("subscribers:unsubscribe", args=[sub.token]))

    with commit():
        shown = client.get(path)
        posted = client.post(path)

    assert shown.status_code == posted.status_code == 404
    assert b"This link no longer works" in posted.content
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED
    assert len(mailoutbox) == 2


def test_a_confirm_link_does_not_activate_an_address_suppressed_since(
    client, commit, mailoutbox
):
    post_subscribe(client, commit, "ada@example.org")
    path = link_in(mailoutbox[0], r"/subscribe/confirm/\S+/")
    Suppression.objects.create(
        email_hash=hash_email("ada@example.org"), reason="complained"
    )

    with commit():
        response = client.post(path)

    assert response.status_code == 404
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert len(mailoutbox) == 1
    assert SESSION_KEY not in client.session


def test_a_confirm_link_expires_after_seven_days(client, commit, mailoutbox):
    from django.core import signing

    sub = PendingSubscriberFactory(email="ada@example.org")
    eight_days_ago = timezone.now() - timedelta(days=8)
    signer = signing.TimestampSigner(salt="subscribers.confirm")
    signer.timestamp = lambda: signing.b62_encode(int(eight_days_ago.timestamp()))
    old = signer.sign_object([sub.pk, sub.confirmation_nonce], compress=True)

    assert client.get(f"/subscribe/confirm/{old}/").status_code == 404
    assert client.post(f"/subscribe/confirm/{old}/").status_code == 404
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_a_forged_confirm_token_is_refused(client):
    sub = PendingSubscriberFactory()
    assert (
        client.post(
            f"/subscribe/confirm/{sub.pk}:{sub.confirmation_nonce}/"
        ).status_code
        == 404
    )
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_coming_back_after_unsubscribing_needs_double_opt_in_again(
    client, commit, mailoutbox
):
    SubscriberFactory(
        email="ada@example.org",
        status=Subscriber.Status.UNSUBSCRIBED,
        unsubscribed_at=timezone.now(),
    )

    post_subscribe(client, commit, "ada@example.org")

    sub = Subscriber.objects.get()
    assert sub.status == Subscriber.Status.PENDING
    assert not Subscriber.objects.receiving().exists()
    assert len(mailoutbox) == 1
    with commit():
        client.post(link_in(mailoutbox[0], r"/subscribe/confirm/\S+/"))
    assert Subscriber.objects.receiving().get() == sub


def test_a_suppressed_address_cannot_subscribe_again(client, commit, mailoutbox):
    Suppression.objects.create(
        email_hash=hash_email("gone@example.org"), reason="deleted"
    )

    post_subscribe(client, commit, "Gone@Example.org")

    assert not Subscriber.objects.exists()
    assert mailoutbox == []


def test_the_home_page_subscribe_form_posts_to_subscribe(client):
    html = client.get("/").content.decode()

    assert 'action="/subscribe/"' in html
    assert 'name="website"' in html


def test_account_emails_come_from_the_publications_sender(client, commit, mailoutbox):
    publication = Publication.load()
    publication.name = "Gradient Notes"
    publication.sender_name = "Ada at\r\nGradient Notes"  # a stray line break
    publication.sender_email = "ada@gradient.example"
    publication.save()

    post_subscribe(client, commit, "reader@example.org")

    assert mailoutbox[0].from_email == "Ada at Gradient Notes <ada@gradient.example>"
    assert "From: Ada at Gradient Notes <ada@gradient.example>" in (
        mailoutbox[0].message().as_string()
    )
