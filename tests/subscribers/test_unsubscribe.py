import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from newsletter.models import Publication
from subscribers.models import Subscriber, Suppression, hash_email
from subscribers.sessions import SESSION_KEY
from tests.factories.subscribers import SubscriberFactory

from .conftest import link_in

pytestmark = pytest.mark.django_db


def _state():
    return list(
        Subscriber.objects.order_by("pk").values_list(
            "email", "status", "unsubscribed_at", "confirmation_nonce", "consent_at"
        )
    )


def _resubscribe_url(token: str) -> str:
    return reverse("subscribers:resubscribe_by_token", args=[token])


def test_unsubscribe_get_names_the_address_and_changes_nothing(client):
    publication = Publication.load()
    publication.name = "Gradient Notes"
    publication.save()
    sub = SubscriberFactory(email="ada@example.org")
    before = _state()

    response = client.get(reverse("subscribers:unsubscribe", args=[sub.token]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Unsubscribe ada@example.org from Gradient Notes?" in page
    assert "<button" in page and "Resubscribe" not in page
    assert _state() == before


def test_one_click_post_unsubscribes_without_cookie_or_csrf_token():
    sub = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        reverse("subscribers:unsubscribe", args=[sub.token]),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert not response.cookies  # nothing is left with the mail provider
    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.UNSUBSCRIBED
    assert sub.unsubscribed_at is not None
    assert not Subscriber.objects.receiving().exists()


def test_unsubscribing_twice_is_harmless():
    sub = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)
    url = reverse("subscribers:unsubscribe", args=[sub.token])
    first = client.post(url)
    sub.refresh_from_db()
    when = sub.unsubscribed_at

    second = client.post(url)

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    sub.refresh_from_db()
    assert sub.unsubscribed_at == when


def test_an_unknown_token_changes_nothing_and_names_nobody():
    SubscriberFactory(email="ada@example.org")
    before = _state()
    client = Client(enforce_csrf_checks=True)
    url = reverse("subscribers:unsubscribe", args=["no-such-token"])

    shown = client.get(url)
    posted = client.post(url, data="List-Unsubscribe=One-Click",
                         content_type="application/x-www-form-urlencoded")  # fmt: skip

    assert shown.status_code == posted.status_code == 200
    assert "Stop receiving this newsletter by email." in shown.content.decode()
    assert "You are unsubscribed" in posted.content.decode()
    for response in (shown, posted):
        page = response.content.decode()
        assert "@example.org" not in page
        assert "Resubscribe" not in page and "already" not in page
    assert _state() == before


def test_an_unsubscribed_address_is_told_so_with_a_resubscribe_button(client):
    sub = SubscriberFactory(
        email="ada@example.org",
        status=Subscriber.Status.UNSUBSCRIBED,
        unsubscribed_at=timezone.now(),
    )
    before = _state()

    response = client.get(reverse("subscribers:unsubscribe", args=[sub.token]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "You are already unsubscribed" in page
    assert "ada@example.org gets no emails" in page
    assert f'action="{_resubscribe_url(sub.token)}"' in page
    assert ">Resubscribe</button>" in page
    assert _state() == before


def test_after_unsubscribing_resubscribe_sends_a_confirmation_and_activates_nothing(
    smtp_settings, commit
):
    sub = SubscriberFactory(email="ada@example.org")
    client = Client(enforce_csrf_checks=True)

    done = client.post(reverse("subscribers:unsubscribe", args=[sub.token]))
    assert "ada@example.org will get no more emails" in done.content.decode()
    assert "Unsubscribed by mistake?" in done.content.decode()
    assert f'action="{_resubscribe_url(sub.token)}"' in done.content.decode()

    with commit():
        again = client.post(
            _resubscribe_url(sub.token),
            HTTP_USER_AGENT="Mozilla/5.0 test",
            REMOTE_ADDR="198.51.100.7",
        )

    assert again.status_code == 200
    assert "Check your inbox" in again.content.decode()
    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.PENDING
    assert sub.consent_source == "form:/unsubscribe/"
    assert sub.consent_ip == "198.51.100.7"
    assert not Subscriber.objects.receiving().exists()
    (confirmation,) = smtp_settings.messages
    assert confirmation.rcpt_tos == ["ada@example.org"]
    assert "Confirm" in confirmation.message["Subject"]
    text = confirmation.message.get_body(preferencelist=("plain",)).get_content()
    with commit():
        Client().post(link_in(text, r"/subscribe/confirm/\S+/"))
    assert Subscriber.objects.receiving().get() == sub


def test_resubscribe_with_an_unknown_token_changes_nothing(
    client, smtp_settings, commit
):
    sub = SubscriberFactory(
        email="ada@example.org",
        status=Subscriber.Status.UNSUBSCRIBED,
        unsubscribed_at=timezone.now(),
    )
    staff = get_user_model().objects.create_user("ed", is_staff=True)
    signed_in = Client()
    session = signed_in.session
    session[SESSION_KEY] = SubscriberFactory(email="other@example.org").pk
    session.save()
    as_staff = Client()
    as_staff.force_login(staff)
    before = _state()

    for who in (client, signed_in, as_staff):
        for token in ("no-such-token", sub.token[:-1], sub.token + "x", f"{sub.pk}"):
            with commit():
                response = who.post(_resubscribe_url(token))
            assert response.status_code == 302
            assert response["Location"] == reverse(
                "subscribers:unsubscribe", args=[token]
            )

    assert _state() == before
    assert smtp_settings.messages == []


def test_resubscribe_cannot_be_used_on_someone_still_subscribed_or_suppressed(
    client, smtp_settings, commit
):
    active = SubscriberFactory(email="ada@example.org")
    gone = SubscriberFactory(
        email="gone@example.org", status=Subscriber.Status.UNSUBSCRIBED
    )
    Suppression.objects.create(
        email_hash=hash_email("gone@example.org"), reason="complained"
    )
    before = _state()

    with commit():
        kept = client.post(_resubscribe_url(active.token))
        refused = client.post(_resubscribe_url(gone.token))

    assert kept.status_code == 302
    assert (
        "Resubscribe"
        not in client.get(
            reverse("subscribers:unsubscribe", args=[gone.token])
        ).content.decode()
    )
    assert refused.status_code == 200  # the same answer as the subscribe form's
    assert _state() == before
    assert smtp_settings.messages == []


def test_resubscribe_is_rate_limited_like_the_subscribe_form(client, commit):
    sub = SubscriberFactory(email="ada@example.org", status="unsubscribed")
    for n in range(20):
        with commit():
            client.post("/subscribe/", {"email": f"r{n}@example.org", "page": "/"})
    before = _state()

    with commit():
        response = client.post(_resubscribe_url(sub.token))

    assert response.status_code == 429
    assert _state() == before


def test_resubscribe_takes_only_post(client):
    sub = SubscriberFactory(email="ada@example.org", status="unsubscribed")
    before = _state()

    assert client.get(_resubscribe_url(sub.token)).status_code == 405
    assert _state() == before


def test_unsubscribing_does_not_touch_a_bounced_address():
    sub = SubscriberFactory(status=Subscriber.Status.BOUNCED)

    Client().post(reverse("subscribers:unsubscribe", args=[sub.token]))

    sub.refresh_from_db()
    assert sub.status == Subscriber.Status.BOUNCED
