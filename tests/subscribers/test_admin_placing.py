"""The subscriber admin puts subscribers in newsletters and labels, set-based."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from newsletter.models import Newsletter
from subscribers.models import Label, Subscriber, Subscription
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db

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


def in_newsletter(newsletter) -> set[str]:
    return set(
        Subscription.objects.filter(newsletter=newsletter).values_list(
            "subscriber__email", flat=True
        )
    )


def labelled(name: str) -> set[str]:
    return set(
        Subscriber.objects.filter(labels__name=name).values_list("email", flat=True)
    )


def test_adding_to_a_newsletter_asks_which_then_adds_the_selection(staff, lists):
    monthly, news = lists
    ada, grace, linus = (
        SubscriberFactory(email=f"{n}@example.org") for n in ("ada", "grace", "linus")
    )

    page = staff.post(
        CHANGELIST,
        {"action": "add_to_newsletter", "_selected_action": [ada.pk, grace.pk]},
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "Add to a newsletter" in html and "ada@example.org" in html
    assert "linus@example.org" not in html
    assert in_newsletter(news) == set()  # nothing before the choice

    done = staff.post(
        CHANGELIST,
        {
            "action": "add_to_newsletter",
            "_selected_action": [ada.pk, grace.pk],
            "newsletter": news.pk,
            "apply": "1",
        },
        follow=True,
    )
    assert "Added 2 subscriber(s) to Announcements." in done.content.decode()
    assert in_newsletter(news) == {"ada@example.org", "grace@example.org"}

    staff.post(
        CHANGELIST,
        {
            "action": "remove_from_newsletter",
            "_selected_action": [grace.pk, linus.pk],
            "newsletter": monthly.pk,
            "apply": "1",
        },
    )
    assert in_newsletter(monthly) == {"ada@example.org"}


def test_select_all_acts_on_every_subscriber_the_filters_match(staff, lists):
    monthly, news = lists
    active = SubscriberFactory.create_batch(130)
    SubscriberFactory.create_batch(5, status="unsubscribed")
    # The browser sends the rows of the page it shows with "select all 130".
    on_the_page = [s.pk for s in active[:100]]

    page = staff.post(
        CHANGELIST + "?status__exact=active",
        {
            "action": "add_label",
            "select_across": "1",
            "_selected_action": on_the_page,
        },
    )
    assert page.status_code == 200
    assert "<strong>130</strong> subscribers (every one" in page.content.decode()
    assert 'name="select_across" value="1"' in page.content.decode()

    staff.post(
        CHANGELIST + "?status__exact=active",
        {
            "action": "add_label",
            "select_across": "1",
            "_selected_action": on_the_page,
            "index": "0",
            "new_labels": "Spring 2026, reviewers",
            "apply": "1",
        },
    )

    assert Subscriber.objects.filter(labels__name="Spring 2026").count() == 130
    assert not Subscriber.objects.filter(
        status="unsubscribed", labels__isnull=False
    ).exists()
    assert Subscriber.labels.through.objects.count() == 260


def test_adding_and_removing_labels(staff):
    vip = Label.objects.create(name="VIP")
    ada = SubscriberFactory(email="ada@example.org")
    grace = SubscriberFactory(email="grace@example.org")
    ada.labels.add(vip)

    staff.post(
        CHANGELIST,
        {
            "action": "add_label",
            "_selected_action": [ada.pk, grace.pk],
            "labels": [vip.pk],
            "new_labels": "speaker",
            "apply": "1",
        },
    )
    assert labelled("VIP") == labelled("speaker") == {ada.email, grace.email}

    staff.post(
        CHANGELIST,
        {
            "action": "remove_label",
            "_selected_action": [ada.pk],
            "labels": [vip.pk],
            "apply": "1",
        },
    )
    assert labelled("VIP") == {grace.email}
    assert labelled("speaker") == {ada.email, grace.email}


def test_a_hostile_label_name_is_refused_on_the_page(staff):
    ada = SubscriberFactory()

    page = staff.post(
        CHANGELIST,
        {
            "action": "add_label",
            "_selected_action": [ada.pk],
            "new_labels": '=HYPERLINK("http://evil.example")',
            "apply": "1",
        },
    )

    assert page.status_code == 200
    assert "formula" in page.content.decode()
    assert not Label.objects.exists()


def test_the_list_filters_and_shows_newsletters_and_labels_in_a_few_queries(
    staff, lists, django_assert_max_num_queries
):
    monthly, news = lists
    vip = Label.objects.create(name="VIP")
    for n in range(60):
        subscriber = SubscriberFactory(email=f"r{n}@example.org")
        if n % 2:
            subscriber.newsletters.add(news)
            subscriber.labels.add(vip)
    nowhere = SubscriberFactory(email="nowhere@example.org")
    nowhere.newsletters.clear()

    with django_assert_max_num_queries(30):
        html = staff.get(CHANGELIST).content.decode()
    assert "Announcements" in html and "VIP" in html

    by_news = staff.get(CHANGELIST, {"newsletter": news.pk}).content.decode()
    rows = re.findall(r"r\d+@example.org", by_news.split("result_list")[1])
    assert len(set(rows)) == 30
    by_label = staff.get(CHANGELIST, {"label": vip.pk}).content.decode()
    assert "r1@example.org" in by_label and "r2@example.org" not in by_label
    by_none = staff.get(CHANGELIST, {"newsletter": "none"}).content.decode()
    assert "nowhere@example.org" in by_none and "r1@example.org" not in by_none
    no_label = staff.get(CHANGELIST, {"label": "none"}).content.decode()
    assert "r2@example.org" in no_label and "r1@example.org" not in no_label


def test_labels_and_newsletters_are_edited_on_the_change_form(staff, lists):
    monthly, news = lists
    vip = Label.objects.create(name="VIP")
    ada = SubscriberFactory(email="ada@example.org", name="Ada")
    url = reverse("admin:subscribers_subscriber_change", args=[ada.pk])
    assert 'name="labels"' in staff.get(url).content.decode()

    response = staff.post(
        url,
        {
            "email": "ada@example.org",
            "name": "Ada",
            "status": "active",
            "source": "form",
            "receives": [news.pk],
            "labels": [vip.pk],
            "new_labels": "Speaker, reviewer",
        },
    )

    assert response.status_code == 302
    assert set(ada.labels.values_list("name", flat=True)) == {
        "VIP",
        "Speaker",
        "reviewer",
    }
    assert list(ada.newsletters.all()) == [news]


def test_the_import_page_puts_the_file_in_the_chosen_newsletters_and_labels(
    staff, lists
):
    monthly, news = lists
    url = reverse("admin:subscribers_subscriber_import")
    page = staff.get(url).content.decode()
    # The newsletters new subscribers join are ticked at first.
    assert re.search(rf'value="{monthly.pk}"[^>]*checked', page)
    assert not re.search(rf'value="{news.pk}"[^>]*checked', page)

    upload = SimpleUploadedFile(
        "list.csv", b"email,name,labels\nada@example.org,Ada,=cmd|' /C calc'!A0;VIP\n"
    )
    response = staff.post(
        url,
        {
            "file": upload,
            "format": "auto",
            "newsletters": [news.pk],
            "new_labels": "From the admin",
        },
    )

    html = response.content.decode()
    assert 'data-report="labelled">2' in html
    assert '<tr class="import-label-refused"><td>2</td>' in html
    assert labelled("From the admin") == labelled("VIP") == {"ada@example.org"}
    assert in_newsletter(news) == {"ada@example.org"}
    assert in_newsletter(monthly) == set()


@pytest.fixture
def outsider_staff(client):
    """Staff who may see subscribers but not change them."""
    user = get_user_model().objects.create_user("intern", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_subscriber", "add_subscriber"])
    )
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "action",
    ["add_to_newsletter", "remove_from_newsletter", "add_label", "remove_label"],
)
def test_staff_without_the_change_permission_change_nothing(
    outsider_staff, lists, action
):
    monthly, news = lists
    vip = Label.objects.create(name="VIP")
    ada = SubscriberFactory()
    ada.labels.add(vip)
    before = (
        list(Subscription.objects.values_list("subscriber", "newsletter")),
        list(Subscriber.labels.through.objects.values_list("subscriber", "label")),
    )

    response = outsider_staff.post(
        CHANGELIST,
        {
            "action": action,
            "_selected_action": [ada.pk],
            "select_across": "1",
            "newsletter": news.pk if "add" in action else monthly.pk,
            "labels": [vip.pk],
            "new_labels": "sneaky",
            "apply": "1",
        },
    )

    assert response.status_code == 403
    assert before == (
        list(Subscription.objects.values_list("subscriber", "newsletter")),
        list(Subscriber.labels.through.objects.values_list("subscriber", "label")),
    )
    assert not Label.objects.filter(name="sneaky").exists()


def test_an_outsider_is_sent_to_the_login_page(client, lists):
    ada = SubscriberFactory()

    response = client.post(
        CHANGELIST,
        {
            "action": "add_to_newsletter",
            "_selected_action": [ada.pk],
            "newsletter": lists[1].pk,
            "apply": "1",
        },
    )

    assert response.status_code == 302 and "/login/" in response["Location"]
    assert in_newsletter(lists[1]) == set()
