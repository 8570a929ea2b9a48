"""The newsletters in the admin: listed in their order, edited, and never all gone."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from newsletter.models import Newsletter
from tests.factories.issues import IssueFactory
from tests.factories.subscribers import SubscriberFactory

pytestmark = pytest.mark.django_db


def change_url(newsletter) -> str:
    return reverse("admin:newsletter_newsletter_change", args=[newsletter.pk])


def delete_url(newsletter) -> str:
    return reverse("admin:newsletter_newsletter_delete", args=[newsletter.pk])


def test_the_list_shows_each_newsletter_in_position_order_with_its_counts(
    admin_client,
):
    first = Newsletter.default()
    Newsletter.objects.create(name="Zeta first", slug="zeta", position=0)
    first.name, first.position = "Monthly issue", 1
    first.save()
    SubscriberFactory()
    SubscriberFactory()

    page = admin_client.get(reverse("admin:newsletter_newsletter_changelist"))

    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("Zeta first") < html.index("Monthly issue")
    assert Newsletter.default().slug == "zeta"


def test_a_newsletter_is_added_with_its_list_settings(admin_client):
    response = admin_client.post(
        reverse("admin:newsletter_newsletter_add"),
        {
            "name": "Announcements",
            "slug": "announcements",
            "description": "Now and then.",
            "sender_name": "Quire news",
            "list_id": "news.example.org",
            "join_by_default": "",
            "position": "3",
        },
    )

    assert response.status_code == 302
    added = Newsletter.objects.get(slug="announcements")
    assert (added.sender_name, added.list_id, added.join_by_default) == (
        "Quire news",
        "news.example.org",
        False,
    )


def test_a_name_on_two_lines_is_refused(admin_client):
    response = admin_client.post(
        reverse("admin:newsletter_newsletter_add"),
        {"name": "Evil\r\nBcc: x@example.org", "slug": "evil", "position": "1"},
    )

    assert response.status_code == 200
    assert "Write it on one line" in response.content.decode()
    assert not Newsletter.objects.filter(slug="evil").exists()


def test_the_only_newsletter_cannot_be_deleted(admin_client):
    only = Newsletter.default()

    page = admin_client.get(delete_url(only), follow=True)
    assert "there must always be one" in page.content.decode()
    admin_client.post(delete_url(only), {"post": "yes"})

    assert Newsletter.objects.filter(pk=only.pk).exists()


def test_a_newsletter_with_issues_cannot_be_deleted(admin_client):
    Newsletter.default()
    other = Newsletter.objects.create(name="Other", slug="other", position=1)
    IssueFactory(newsletter=other)

    page = admin_client.post(delete_url(other), {"post": "yes"}, follow=True)

    assert "has 1 issue: move them to another newsletter" in page.content.decode()
    assert Newsletter.objects.filter(pk=other.pk).exists()


def test_an_empty_newsletter_next_to_another_is_deleted(admin_client):
    Newsletter.default()
    other = Newsletter.objects.create(name="Other", slug="other", position=1)

    response = admin_client.post(delete_url(other), {"post": "yes"})

    assert response.status_code == 302
    assert not Newsletter.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize("who", ["outsider", "staff without the permission"])
def test_newsletters_cannot_be_changed_without_the_permission(who):
    newsletter = Newsletter.default()
    client = Client()
    if who != "outsider":
        user = get_user_model().objects.create_user(
            "someone", "s@example.org", "pw-for-tests-only", is_staff=True
        )
        user.user_permissions.set(Permission.objects.filter(codename="view_newsletter"))
        client.force_login(user)

    client.post(
        change_url(newsletter),
        {"name": "Taken", "slug": "taken", "position": "0"},
    )
    client.post(delete_url(newsletter), {"post": "yes"})

    newsletter.refresh_from_db()
    assert newsletter.name != "Taken" and newsletter.slug == "newsletter"
