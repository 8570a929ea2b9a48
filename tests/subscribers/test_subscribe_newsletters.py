"""The subscribe form offers the newsletters (two or more) and keeps the choice
through double opt-in; on cached pages the checkboxes are the same for everyone."""

import re

import pytest
from django.test import Client

from newsletter.models import Newsletter
from subscribers import services
from subscribers.models import Subscriber, Subscription
from tests.factories.subscribers import SubscriberFactory

from .conftest import link_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def lists():
    monthly = Newsletter.default()
    monthly.name = "The monthly issue"
    monthly.save()
    news = Newsletter.objects.create(
        name="Announcements", slug="news", position=1, description="Now and then."
    )
    rare = Newsletter.objects.create(
        name="Rare notes", slug="rare", position=2, join_by_default=False
    )
    return monthly, news, rare


def post(client, commit, email, **data):
    with commit():
        return client.post(
            "/subscribe/",
            {"email": email, "page": "/", **data},
            REMOTE_ADDR="198.51.100.7",
        )


def slugs(subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber).values_list(
            "newsletter__slug", flat=True
        )
    )


def checkboxes(html: str) -> dict[str, bool]:
    """Return each newsletter checkbox's value and whether it is ticked."""
    return {
        value: bool(checked)
        for value, checked in re.findall(
            r'<input id="subscribe-newsletter-\d+" type="checkbox" '
            r'name="newsletters" value="(\d+)"( checked)?>',
            html,
        )
    }


def test_with_one_newsletter_the_form_offers_no_choice(client):
    html = client.get("/subscribe/").content.decode()

    assert 'name="newsletters"' not in html
    assert "newsletters_offered" not in html


def test_with_several_the_form_offers_each_ticked_as_it_joins_by_default(client, lists):
    monthly, news, rare = lists

    html = client.get("/subscribe/").content.decode()

    assert checkboxes(html) == {
        str(monthly.pk): True,
        str(news.pk): True,
        str(rare.pk): False,
    }
    assert "Now and then." in html
    assert html.index("The monthly issue") < html.index("Rare notes")


def test_the_cached_home_page_offers_the_same_checkboxes_to_everyone(lists):
    first = Client().get("/").content.decode()
    second = Client().get("/").content.decode()  # from the page cache

    assert checkboxes(first) == checkboxes(second) != {}
    # A newsletter added in the admin shows at once: the cached page is dropped.
    Newsletter.objects.create(name="Fourth", slug="fourth", position=3)
    assert len(checkboxes(Client().get("/").content.decode())) == 4


def test_the_choice_is_kept_through_double_opt_in(client, commit, mailoutbox, lists):
    monthly, news, rare = lists

    response = post(
        client,
        commit,
        "ada@example.org",
        newsletters_offered="1",
        newsletters=[str(rare.pk), str(news.pk)],
    )

    assert response.status_code == 200
    ada = Subscriber.objects.get(email="ada@example.org")
    assert ada.status == Subscriber.Status.PENDING
    assert slugs(ada) == {"rare", "news"}
    assert not Subscriber.objects.receiving(newsletter=rare.pk).exists()

    with commit():
        Client().post(link_in(mailoutbox[0], r"/subscribe/confirm/\S+/"))

    assert list(Subscriber.objects.receiving(newsletter=rare.pk)) == [ada]
    assert list(Subscriber.objects.receiving(newsletter=news.pk)) == [ada]
    assert not Subscriber.objects.receiving(newsletter=monthly.pk).exists()


def test_offering_and_ticking_none_is_refused_with_the_reason(client, commit, lists):
    response = post(client, commit, "ada@example.org", newsletters_offered="1")

    assert response.status_code == 400
    assert "Choose at least one newsletter" in response.content.decode()
    assert not Subscriber.objects.exists()
    # What was typed stays, nothing ticked.
    assert set(checkboxes(response.content.decode()).values()) == {False}


def test_a_form_without_the_choice_joins_the_default_newsletters(client, commit, lists):
    post(client, commit, "ada@example.org")  # a page cached before the second one

    assert slugs(Subscriber.objects.get()) == {"newsletter", "news"}


def test_unknown_newsletter_ids_are_refused_by_the_form_and_ignored_below(
    client, commit, lists
):
    response = post(
        client, commit, "ada@example.org", newsletters_offered="1", newsletters="999"
    )

    assert response.status_code == 400
    assert not Subscriber.objects.filter(email="ada@example.org").exists()
    # Queued before a newsletter was deleted: the default ones instead.
    services.subscribe(email="bob@example.org", newsletters=[999_999])
    assert slugs(Subscriber.objects.get(email="bob@example.org")) == {
        "newsletter",
        "news",
    }


def test_the_public_form_changes_no_active_subscriber_s_newsletters(
    client, commit, lists
):
    _, _, rare = lists
    reader = SubscriberFactory(email="reader@example.org")

    post(
        client,
        commit,
        "reader@example.org",
        newsletters_offered="1",
        newsletters=[str(rare.pk)],
    )

    assert slugs(reader) == {"newsletter", "news"}


def test_coming_back_after_leaving_the_last_one_joins_the_defaults(lists):
    monthly, news, _ = lists
    reader = SubscriberFactory()
    services.leave_newsletter(subscriber=reader, newsletter_id=monthly.pk)
    services.leave_newsletter(subscriber=reader, newsletter_id=news.pk)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED and slugs(reader) == set()

    services.subscribe(email=reader.email)

    assert slugs(reader) == {"newsletter", "news"}


def test_a_form_refused_for_its_missing_csrf_token_comes_back_with_the_choice(lists):
    _, news, rare = lists
    reader = Client(enforce_csrf_checks=True)

    response = reader.post(
        "/subscribe/",
        {
            "email": "ada@example.org",
            "newsletters_offered": "1",
            "newsletters": [str(rare.pk)],
        },
    )

    assert response.status_code == 403
    assert checkboxes(response.content.decode()) == {
        str(Newsletter.default().pk): False,
        str(news.pk): False,
        str(rare.pk): True,
    }
    assert not Subscriber.objects.exists()


def test_the_choice_on_a_cached_page_goes_through_with_the_reader_s_token(
    commit, lists
):
    _, _, rare = lists
    Client().get("/")  # cached for everyone
    reader = Client(enforce_csrf_checks=True)
    reader.get("/csrf/")
    page = reader.get("/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    with commit():
        response = reader.post(
            "/subscribe/",
            {
                "email": "ada@example.org",
                "csrfmiddlewaretoken": token,
                "newsletters_offered": "1",
                "newsletters": [str(rare.pk)],
            },
        )

    assert response.status_code == 200
    assert slugs(Subscriber.objects.get(email="ada@example.org")) == {"rare"}
