"""The author's sending tools in the issue admin, over HTTP."""

import pytest
from django.urls import reverse
from django.utils import timezone

from issues.models import Issue
from issues.sending import delivery, services
from issues.sending.models import Delivery, Send
from newsletter.models import Newsletter
from tests.factories.issues import IssueFactory
from tests.sending.conftest import make_subscribers, parse

pytestmark = pytest.mark.django_db


@pytest.fixture
def author(django_user_model):
    return django_user_model.objects.create_superuser(
        "author", "author@example.org", "pw-for-tests-only"
    )


@pytest.fixture
def staff_client(client, author):
    client.force_login(author)
    return client


def test_publish_confirmation_says_how_many_will_get_it(staff_client, issue):
    make_subscribers(7)
    url = reverse("admin:sending_publish", args=[issue.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert "7 subscribers" in page.content.decode()
    assert not Send.objects.exists()  # a GET publishes nothing


def test_publish_now_publishes_once(
    staff_client, issue, django_capture_on_commit_callbacks
):
    make_subscribers(3)
    url = reverse("admin:sending_publish", args=[issue.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url)
        staff_client.post(url)  # a second tab
    assert response.status_code == 302
    send = Send.objects.get(issue=issue)
    assert send.status == Send.Status.DONE and send.sent_count == 3
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED


def test_schedule_sets_the_time_and_status(staff_client, issue):
    make_subscribers(2)
    url = reverse("admin:sending_schedule", args=[issue.pk])
    page = staff_client.get(url)
    assert "2 subscribers" in page.content.decode()
    response = staff_client.post(
        url, {"publish_at_0": "2099-01-02", "publish_at_1": "09:30:00"}
    )
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SCHEDULED
    assert (issue.publish_at.year, issue.publish_at.hour) == (2099, 9)


def test_schedule_refuses_a_time_in_the_past(staff_client, issue):
    url = reverse("admin:sending_schedule", args=[issue.pk])
    response = staff_client.post(
        url, {"publish_at_0": "2001-01-02", "publish_at_1": "09:30:00"}
    )
    assert response.status_code == 200
    assert "That time has passed" in response.content.decode()
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT


def test_send_a_test_defaults_to_the_author_and_publishes_nothing(
    staff_client, issue, settings, django_user_model
):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    # Tests go to staff addresses (others need a confirmation box).
    django_user_model.objects.create_user(
        "editor", "editor@example.org", "pw-for-tests-only", is_staff=True
    )
    url = reverse("admin:sending_test", args=[issue.pk])
    page = staff_client.get(url)
    assert "author@example.org" in page.content.decode()
    response = staff_client.post(
        url, {"emails": "author@example.org, editor@example.org", "segment": "free"}
    )
    assert response.status_code == 302
    messages = [parse(p.read_bytes()) for p in settings.EMAIL_OUTBOX_DIR.glob("*.eml")]
    assert sorted(m["To"] for m in messages) == [
        "author@example.org",
        "editor@example.org",
    ]
    assert all(m["Subject"].startswith("[Test] ") for m in messages)
    assert not Send.objects.exists()


def test_send_a_test_rejects_a_bad_address(staff_client, issue):
    url = reverse("admin:sending_test", args=[issue.pk])
    response = staff_client.post(url, {"emails": "not-an-address", "segment": "paid"})
    assert response.status_code == 200
    assert "is not an email address" in response.content.decode()


def test_email_preview_shows_free_and_paid_html_and_text(staff_client, paid_enabled):
    from tests.factories.issues import IssueFactory

    issue = IssueFactory(body="Free words.\n\n<!-- paywall -->\n\nPaid words.")
    url = reverse("admin:sending_preview", args=[issue.pk])
    free = staff_client.get(url, {"segment": "free"}).content.decode()
    paid = staff_client.get(url, {"segment": "paid"}).content.decode()
    assert "Free words." in free and "Paid words." not in free
    assert "Paid words." in paid
    raw = reverse("admin:sending_preview_raw", args=[issue.pk])
    free_html = staff_client.get(raw, {"segment": "free"})
    assert free_html["X-Frame-Options"] == "SAMEORIGIN"
    assert "Become a supporter" in free_html.content.decode()
    # Links read as they will in the real email, not with an empty token.
    assert "/unsubscribe/preview/" in free_html.content.decode()
    assert "/unsubscribe//" not in free_html.content.decode()


def test_change_page_shows_the_send_panel_and_status_json(staff_client, issue):
    make_subscribers(4)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    Delivery.objects.filter(email="reader0@example.org").update(
        status="failed", last_error="554 5.7.1 Message refused"
    )
    Delivery.objects.filter(email="reader1@example.org").update(
        status="sent", possibly_duplicate=True
    )
    page = staff_client.get(reverse("admin:issues_issue_change", args=[issue.pk]))
    html = page.content.decode()
    assert 'id="send-panel"' in html and "js/send-panel.js" in html
    assert "554 5.7.1 Message refused" in html
    assert "possibly duplicated" in html

    data = staff_client.get(reverse("admin:sending_status", args=[issue.pk])).json()
    assert data["total"] == 4 and data["failed"] == 1 and data["sent"] == 1
    assert data["queued"] == 2 and data["possibly_duplicated"] == 1
    assert data["problems"][0]["email"] == "reader1@example.org"


def test_pause_resume_and_retry_failed_buttons(
    staff_client, issue, django_capture_on_commit_callbacks
):
    make_subscribers(3)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    control = "admin:sending_control"

    staff_client.post(reverse(control, args=[issue.pk, "pause"]))
    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    with django_capture_on_commit_callbacks():
        staff_client.post(reverse(control, args=[issue.pk, "resume"]))
    send.refresh_from_db()
    assert send.status == Send.Status.SENDING

    Delivery.objects.filter(send=send).update(status="failed")
    with django_capture_on_commit_callbacks():
        staff_client.post(reverse(control, args=[issue.pk, "retry"]))
    assert Delivery.objects.filter(send=send, status="queued").count() == 3
    assert (
        staff_client.get(reverse(control, args=[issue.pk, "pause"])).status_code == 405
    )


def test_setting_status_published_in_the_form_starts_the_send(
    staff_client, issue, django_capture_on_commit_callbacks
):
    make_subscribers(2)
    url = reverse("admin:issues_issue_change", args=[issue.pk])
    data = {
        "title": issue.title,
        "slug": issue.slug,
        "subtitle": "",
        "body": issue.body,
        "status": "published",
        "access": "free",
        "newsletter": str(Newsletter.default().pk),
        "audience": "all",
        "citations-TOTAL_FORMS": "0",
        "citations-INITIAL_FORMS": "0",
        "citations-MIN_NUM_FORMS": "0",
        "citations-MAX_NUM_FORMS": "1000",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    send = Send.objects.get(issue=issue)
    assert send.sent_count == 2


def test_editing_an_issue_already_published_without_a_send_emails_nobody(
    staff_client, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    # Demo content and imported archives are published without ever being sent.
    issue = IssueFactory(status="published", published_at=timezone.now())
    make_subscribers(2)
    url = reverse("admin:issues_issue_change", args=[issue.pk])
    data = {
        "title": "A typo fixed",
        "slug": issue.slug,
        "subtitle": "",
        "body": issue.body,
        "status": "published",
        "access": "free",
        "newsletter": str(Newsletter.default().pk),
        "audience": "all",
        "citations-TOTAL_FORMS": "0",
        "citations-INITIAL_FORMS": "0",
        "citations-MIN_NUM_FORMS": "0",
        "citations-MAX_NUM_FORMS": "1000",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Issue.objects.get(pk=issue.pk).title == "A typo fixed"
    assert not Send.objects.filter(issue=issue).exists()
    assert list(settings.EMAIL_OUTBOX_DIR.glob("*.eml")) == []


def test_send_and_delivery_admin_lists_open(staff_client, issue):
    make_subscribers(2)
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    assert staff_client.get(reverse("admin:sending_send_changelist")).status_code == 200
    assert (
        staff_client.get(
            reverse("admin:sending_send_change", args=[send.pk])
        ).status_code
        == 200
    )
    assert (
        staff_client.get(reverse("admin:sending_delivery_changelist")).status_code
        == 200
    )


def test_send_and_delivery_lists_cost_the_same_queries_for_many_sends(staff_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories.issues import IssueFactory

    make_subscribers(2)

    def publish_one():
        send = services.publish_issue(issue=IssueFactory())
        delivery.freeze_audience(send=send)

    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(url).status_code == 200
        return len(captured)

    publish_one()
    urls = [
        reverse("admin:sending_send_changelist"),
        reverse("admin:sending_delivery_changelist"),
    ]
    before = [queries(url) for url in urls]
    for _ in range(4):
        publish_one()
    assert [queries(url) for url in urls] == before
