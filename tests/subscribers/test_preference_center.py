"""The account page as a preference center: newsletters, pause, tracking, the
address (changed through a link to the new one), leaving. Every change is a POST
with a CSRF token, by the signed-in subscriber, for themself alone."""

from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from newsletter.models import Newsletter
from subscribers import services
from subscribers.models import Subscriber, Subscription, Suppression, hash_email
from subscribers.sessions import SESSION_KEY
from subscribers.tokens import make_email_change_token
from tests.factories.subscribers import SubscriberFactory

from .conftest import link_in

pytestmark = pytest.mark.django_db

ACCOUNT = "/account/"
NEWSLETTERS = "/account/newsletters/"
EMAIL = "/account/email/"


@pytest.fixture
def lists():
    monthly = Newsletter.default()
    monthly.name = "The monthly issue"
    monthly.save()
    news = Newsletter.objects.create(name="Announcements", slug="news", position=1)
    rare = Newsletter.objects.create(
        name="Rare notes", slug="rare", position=2, join_by_default=False
    )
    return monthly, news, rare


def signed_in(subscriber, *, csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf_checks)
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    return client


def slugs(subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber).values_list(
            "newsletter__slug", flat=True
        )
    )


def state(subscriber) -> tuple:
    row = Subscriber.objects.get(pk=subscriber.pk)
    return (row.email, row.email_hash, row.status, row.paused, row.tracking)


# --- Newsletters ------------------------------------------------------------------


def test_the_page_shows_each_newsletter_ticked_as_received(lists):
    reader = SubscriberFactory()

    html = signed_in(reader).get(ACCOUNT).content.decode()

    assert "Newsletters you receive" in html
    for newsletter, ticked in zip(lists, (True, True, False), strict=True):
        box = (
            f'value="{newsletter.pk}" checked'
            if ticked
            else f'value="{newsletter.pk}">'
        )
        assert box in html, newsletter
    for button in ("Pause emails", "Turn tracking off", "Change address"):
        assert button in html
    assert "Leave all newsletters" in html


def test_with_one_newsletter_the_page_offers_no_newsletter_choice():
    reader = SubscriberFactory()

    html = signed_in(reader).get(ACCOUNT).content.decode()

    assert "Newsletters you receive" not in html
    assert "Leave all newsletters" in html


def test_ticking_newsletters_saves_exactly_those(lists):
    _, news, rare = lists
    reader, other = SubscriberFactory(), SubscriberFactory()

    response = signed_in(reader).post(
        NEWSLETTERS, {"newsletters": [news.pk, rare.pk]}, follow=True
    )

    assert "Your newsletters are saved." in response.content.decode()
    assert slugs(reader) == {"news", "rare"}
    assert slugs(other) == {"newsletter", "news"}
    assert Subscriber.objects.get(pk=reader.pk).status == Subscriber.Status.ACTIVE


def test_ticking_none_is_refused_with_the_way_to_leave_all(lists):
    reader = SubscriberFactory()

    response = signed_in(reader).post(NEWSLETTERS, {}, follow=True)

    assert "Tick at least one newsletter" in response.content.decode()
    assert slugs(reader) == {"newsletter", "news"}


@pytest.mark.parametrize(
    "path,data",
    [
        (NEWSLETTERS, {"newsletters": ["RARE"]}),
        ("/account/pause/", {"paused": "1"}),
        ("/account/tracking/", {"tracking": "0"}),
        (EMAIL, {"email": "new@example.org"}),
        ("/account/unsubscribe/", {}),
    ],
)
def test_an_outsider_and_a_forged_cross_site_post_change_nothing(
    lists, mailoutbox, path, data
):
    _, _, rare = lists
    data = {k: [rare.pk] if v == ["RARE"] else v for k, v in data.items()}
    reader = SubscriberFactory()
    before = (state(reader), slugs(reader))

    outsider = Client().post(path, data)
    # A page elsewhere posting with the reader's cookie, but without the token.
    forged = signed_in(reader, csrf_checks=True).post(path, data)

    assert outsider.status_code == 302 and outsider["Location"] == "/account/login/"
    assert forged.status_code == 403
    assert (state(reader), slugs(reader)) == before
    assert mailoutbox == []


def test_a_subscriber_changes_only_their_own_settings(lists):
    _, _, rare = lists
    reader, other = SubscriberFactory(), SubscriberFactory()
    before = (state(other), slugs(other))
    client = signed_in(reader)

    # Naming the other subscriber anywhere in the request changes nothing of theirs.
    client.post(NEWSLETTERS, {"newsletters": [rare.pk], "subscriber": other.pk})
    client.post(f"/account/pause/?subscriber={other.pk}", {"paused": "1"})

    assert (state(other), slugs(other)) == before
    assert slugs(reader) == {"rare"}
    assert Subscriber.objects.get(pk=reader.pk).paused


def test_pause_then_resume_from_the_page(lists):
    reader = SubscriberFactory()
    client = signed_in(reader)

    page = client.post("/account/pause/", {"paused": "1"}, follow=True)
    assert "Your emails are paused" in page.content.decode()
    assert not Subscriber.objects.receiving().filter(pk=reader.pk).exists()
    client.post("/account/pause/", {"paused": "0"})
    assert Subscriber.objects.receiving().filter(pk=reader.pk).exists()


# --- The address ------------------------------------------------------------------


def ask_for(client, commit, email):
    with commit():
        return client.post(EMAIL, {"email": email}, REMOTE_ADDR="198.51.100.9")


def test_a_new_address_changes_only_once_its_link_is_followed(commit, mailoutbox):
    reader = SubscriberFactory(email="ada@example.org")
    client = signed_in(reader)

    response = ask_for(client, commit, "Ada.New@Example.org")

    assert response.status_code == 302
    page = client.get(ACCOUNT).content.decode()
    assert "We sent a link to ada.new@example.org" in page
    (message,) = mailoutbox
    assert message.to == ["ada.new@example.org"]
    path = link_in(message, r"/account/email/\S+/")
    # Nothing changes until the link is followed, and a GET only shows a button.
    assert "Use this address" in Client().get(path).content.decode()
    assert state(reader)[0] == "ada@example.org"

    with commit():
        done = Client().post(path)

    assert "Your address is changed" in done.content.decode()
    reader.refresh_from_db()
    assert reader.email == "ada.new@example.org"
    assert reader.email_hash == hash_email("ada.new@example.org")
    notice = mailoutbox[-1]
    assert notice.to == ["ada@example.org"]
    assert "now goes to another address" in notice.body
    assert "ada.new@example.org" not in notice.body  # a lost mailbox learns nothing
    # The new address is the one the suppression list now matches.
    services.suppress_address(email="ada.new@example.org", reason="bounced")
    assert Subscriber.objects.get(pk=reader.pk).status == Subscriber.Status.BOUNCED


def test_a_change_link_works_once(commit, mailoutbox):
    reader = SubscriberFactory(email="ada@example.org")
    ask_for(signed_in(reader), commit, "new@example.org")
    path = link_in(mailoutbox[0], r"/account/email/\S+/")
    with commit():
        Client().post(path)
    after = state(reader)

    replay = Client().post(path)

    assert replay.status_code == 404
    assert state(reader) == after
    assert len(mailoutbox) == 2  # the link and one notice, no second notice


def test_an_expired_or_tampered_link_changes_nothing(commit, mailoutbox, settings):
    reader = SubscriberFactory(email="ada@example.org")
    victim = SubscriberFactory(email="victim@example.org")
    before = (state(reader), state(victim))
    token = make_email_change_token(reader, "new@example.org")
    forged = [
        token[:-2] + ("aa" if not token.endswith("aa") else "bb"),
        # A well-formed payload naming another subscriber, without the secret.
        signing.dumps(
            [victim.pk, "evil@example.org", victim.email_hash[:16]],
            salt="subscribers.email_change",
            key="not-the-secret-key",
        ),
        # Signed for another purpose (a sign-in link's salt).
        signing.dumps(
            [reader.pk, "evil@example.org", reader.email_hash[:16]],
            salt="subscribers.login",
        ),
        "garbage",
    ]
    for bad in forged:
        assert Client().post(f"/account/email/{bad}/").status_code == 404

    with pytest.MonkeyPatch.context() as patch:
        import subscribers.tokens as tokens

        patch.setattr(tokens, "EMAIL_CHANGE_MAX_AGE", timedelta(seconds=-1))
        assert Client().post(f"/account/email/{token}/").status_code == 404

    assert (state(reader), state(victim)) == before
    assert mailoutbox == []


def test_another_subscriber_s_or_a_suppressed_address_gets_no_link_but_the_same_answer(
    commit, mailoutbox
):
    reader = SubscriberFactory(email="ada@example.org")
    SubscriberFactory(email="taken@example.org")
    Suppression.objects.create(
        email_hash=hash_email("gone@example.org"), reason="complained"
    )
    client = signed_in(reader)

    answers = []
    for address in ("taken@example.org", "gone@example.org", "free@example.org"):
        response = ask_for(client, commit, address)
        answers.append((response.status_code, response["Location"]))
        page = client.get(ACCOUNT).content.decode()
        assert f"We sent a link to {address}" in page

    assert len(set(answers)) == 1
    assert [m.to for m in mailoutbox] == [["free@example.org"]]
    assert state(reader)[0] == "ada@example.org"


def test_an_address_taken_after_the_link_was_sent_is_refused(commit, mailoutbox):
    reader = SubscriberFactory(email="ada@example.org")
    ask_for(signed_in(reader), commit, "new@example.org")
    path = link_in(mailoutbox[0], r"/account/email/\S+/")
    SubscriberFactory(email="new@example.org")

    response = Client().post(path)

    assert response.status_code == 409
    assert "can no longer be used" in response.content.decode()
    assert state(reader)[0] == "ada@example.org"


def test_one_s_own_address_or_a_malformed_one_is_refused_on_the_page(
    commit, mailoutbox
):
    reader = SubscriberFactory(email="ada@example.org")
    client = signed_in(reader)

    same = ask_for(client, commit, "ADA@example.org")
    bad = ask_for(client, commit, "not an address")

    assert same.status_code == 400
    assert "That is the address you have already." in same.content.decode()
    assert bad.status_code == 400
    assert mailoutbox == []


def test_asking_for_address_changes_is_throttled(commit, mailoutbox):
    reader = SubscriberFactory(email="ada@example.org")
    client = signed_in(reader)

    codes = [
        ask_for(client, commit, f"new{n}@example.org").status_code for n in range(6)
    ]

    assert codes == [302] * 5 + [429]
    assert len(mailoutbox) == 5
    # One mailbox (its + aliases) gets at most three links an hour.
    other = signed_in(SubscriberFactory(email="bob@example.org"))
    for n in range(4):
        ask_for(other, commit, f"flood+{n}@example.org")
    assert sum(m.to[0].startswith("flood") for m in mailoutbox) == 3


def test_following_another_subscriber_s_link_while_signed_in_changes_only_theirs(
    commit, mailoutbox
):
    ada = SubscriberFactory(email="ada@example.org")
    bob = SubscriberFactory(email="bob@example.org")
    ask_for(signed_in(ada), commit, "ada2@example.org")
    path = link_in(mailoutbox[0], r"/account/email/\S+/")
    bob_before = state(bob)

    with commit():
        signed_in(bob).post(path)

    assert state(bob) == bob_before
    assert state(ada)[0] == "ada2@example.org"
    assert reverse("subscribers:email_change_confirm", args=["x"]).startswith(EMAIL)
