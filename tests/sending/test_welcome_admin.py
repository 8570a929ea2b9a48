"""The welcome emails' admin over HTTP: writing steps, their figures and report,
who may do what, and that a welcome email is in neither the issue admin nor the
site."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from issues.analytics.models import DailyIssueStat
from issues.models import Issue
from issues.sending.delivery import welcome
from issues.sending.models import Delivery, Send, WelcomeStep
from newsletter.models import Newsletter
from subscribers.billing.models import Membership
from subscribers.sessions import SESSION_KEY
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory
from tests.sending.conftest import parse
from tests.sending.welcome_support import confirmed_subscribers, make_step

pytestmark = pytest.mark.django_db

ADD = "admin:sending_welcomestep_add"


def text(response) -> str:
    return unescape(response.content.decode())


def cell(page: str, column: str) -> str:
    """Return the text of the first row's cell of a list column."""
    found = re.search(rf'class="field-{column}[^"]*"[^>]*>(.*?)</t[dh]>', page, re.S)
    assert found, column
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


@pytest.fixture
def author_client(client, django_user_model, settings):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    client.force_login(
        django_user_model.objects.create_superuser(
            "author", "author@example.org", "pw-for-tests-only"
        )
    )
    return client


def staff_client(django_user_model, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(
        f"staff-{len(codenames)}",
        f"staff{len(codenames)}@example.org",
        "pw-for-tests-only",
        is_staff=True,
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def subscriber_client():
    """A reader signed in with a magic link (a subscriber, not a staff user)."""
    [subscriber] = confirmed_subscribers(1, start=900)
    client = Client()
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    return client


def form_data(**changes) -> dict:
    data = {
        "newsletter": str(Newsletter.default().pk),
        "subject": "Welcome aboard",
        "body": "Thanks for **joining**.",
        "delay_days": "3",
        "delay_hours": "2",
        "condition": "free",
        "active": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_the_author_writes_a_step_and_it_becomes_a_welcome_draft(author_client):
    page = author_client.get(reverse(ADD))
    assert page.status_code == 200
    assert "confirmed before that do not get it" in text(page)

    response = author_client.post(reverse(ADD), form_data())

    assert response.status_code == 302, text(response)
    step = WelcomeStep.objects.get()
    assert step.delay == timedelta(days=3, hours=2)
    assert step.condition == "free" and step.active and step.activated_at
    assert step.issue.kind == Issue.Kind.WELCOME
    assert step.issue.status == Issue.Status.DRAFT
    assert step.issue.title == "Welcome aboard"
    assert "<strong>joining</strong>" in step.issue.body_html
    assert Send.objects.get(issue=step.issue).status == Send.Status.DONE


def test_editing_a_step_changes_its_content_and_keeps_its_start(author_client):
    step = make_step("Welcome", timedelta(0))
    started = step.activated_at
    url = reverse("admin:sending_welcomestep_change", args=[step.pk])
    page = author_client.get(url)
    assert "Welcome" in text(page) and "Preview the email" in text(page)

    response = author_client.post(
        url, form_data(subject="Welcome, again", body="New words.", active=None)
    )

    assert response.status_code == 302, text(response)
    step.refresh_from_db()
    assert step.issue.title == "Welcome, again" and step.issue.body == "New words."
    assert not step.active and step.activated_at == started
    assert Issue.objects.filter(kind=Issue.Kind.WELCOME).count() == 1


def test_a_body_over_the_limits_is_refused_with_a_message(author_client):
    response = author_client.post(reverse(ADD), form_data(body="> " * 5000 + "deep"))
    assert response.status_code == 200
    assert "nested 5,000 levels deep" in text(response)
    assert not WelcomeStep.objects.exists()


def test_the_list_shows_each_steps_figures_and_links_its_report(author_client):
    step = make_step("Welcome", timedelta(0))
    readers = confirmed_subscribers(3)
    [send_id] = welcome.enqueue_welcome_steps()
    Delivery.objects.filter(send_id=send_id).update(
        status=Delivery.Status.SENT, sent_at=timezone.now() - timedelta(hours=1)
    )
    Send.objects.filter(pk=send_id).update(sent_count=3)
    DailyIssueStat.objects.create(
        issue=step.issue, day=timezone.now().date(), unique_opens=2, unique_clicks=1
    )
    # Paid after the email: a conversion; the complimentary one is not.
    MembershipFactory(
        subscriber=readers[0],
        status=Membership.Status.ACTIVE,
        stripe_subscription_id="sub_1",
        amount=800,
    )
    MembershipFactory(subscriber=readers[1], complimentary=True)

    page = author_client.get(reverse("admin:sending_welcomestep_changelist"))

    body = text(page)
    assert page.status_code == 200
    report_url = reverse("admin:analytics_report", args=[step.issue.pk])
    assert report_url in body
    for header in ("delivered", "opened (people)", "clicked (people)"):
        assert header.upper() in body.upper()
    assert cell(body, "delivered") == "3"
    assert cell(body, "opened") == "2"
    assert cell(body, "clicked") == "1"
    assert cell(body, "converted").startswith("1 · ")

    report = author_client.get(report_url)
    assert report.status_code == 200
    assert 'data-figure="conversions">1<' in report.content.decode()
    assert reverse("admin:sending_welcomestep_change", args=[step.pk]) in text(report)


def test_the_preview_and_the_test_email_have_no_web_version(author_client, settings):
    step = make_step("Welcome", timedelta(0))
    preview = author_client.get(
        reverse("admin:sending_welcomestep_preview", args=[step.pk])
    )
    assert preview.status_code == 200 and "View it in your browser" not in text(preview)
    raw = author_client.get(
        reverse("admin:sending_welcomestep_preview_raw", args=[step.pk])
    )
    assert "Thanks" not in text(raw) and "reader" in text(raw)
    assert "View in your browser" not in text(raw)

    response = author_client.post(
        reverse("admin:sending_welcomestep_test", args=[step.pk]),
        {"emails": "author@example.org", "segment": "free"},
    )

    assert response.status_code == 302
    [path] = settings.EMAIL_OUTBOX_DIR.glob("*.eml")
    message = parse(path.read_bytes())
    assert message["Subject"] == "[Test] Welcome"
    assert not Delivery.objects.exists()  # no subscriber was emailed


def test_welcome_emails_are_in_neither_the_issue_admin_nor_the_site(author_client):
    step = make_step("Welcome only by email", timedelta(0))
    issue = IssueFactory(title="A real issue")

    listing = text(author_client.get(reverse("admin:issues_issue_changelist")))
    assert "A real issue" in listing and "Welcome only by email" not in listing
    change = author_client.get(
        reverse("admin:issues_issue_change", args=[step.issue.pk])
    )
    assert change.status_code == 302  # "does not exist", back to the admin
    # Not on the site, not even for staff, who may open drafts.
    assert author_client.get(step.issue.get_absolute_url()).status_code == 404
    assert author_client.get(issue.get_absolute_url()).status_code == 200
    assert Client().get(step.issue.get_absolute_url()).status_code == 404
    assert "Welcome only by email" not in text(Client().get("/archive/"))


def test_activating_and_deactivating_from_the_list(author_client):
    step = make_step("Welcome", timedelta(0), active=False)
    url = reverse("admin:sending_welcomestep_changelist")
    author_client.post(url, {"action": "activate", "_selected_action": [step.pk]})
    step.refresh_from_db()
    assert step.active and step.activated_at is not None
    author_client.post(url, {"action": "deactivate", "_selected_action": [step.pk]})
    step.refresh_from_db()
    assert not step.active and step.activated_at is not None


def test_outsiders_and_subscribers_change_nothing(subscriber_client):
    step = make_step("Welcome", timedelta(0), active=False)
    urls = [
        reverse(ADD),
        reverse("admin:sending_welcomestep_change", args=[step.pk]),
        reverse("admin:sending_welcomestep_test", args=[step.pk]),
        reverse("admin:sending_welcomestep_changelist"),
    ]
    for outsider in (Client(), subscriber_client):
        for url in urls:
            response = outsider.post(
                url,
                {
                    **form_data(subject="Hijacked"),
                    "action": "activate",
                    "_selected_action": [step.pk],
                    "emails": "outsider@example.net",
                    "outside_staff": "on",
                },
            )
            assert response.status_code == 302
            assert response["Location"].startswith("/admin/login/")
    step.refresh_from_db()
    assert WelcomeStep.objects.count() == 1
    assert step.issue.title == "Welcome" and not step.active


def test_staff_without_the_permission_change_nothing(django_user_model, settings):
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    step = make_step("Welcome", timedelta(0), active=False)
    viewer = staff_client(django_user_model, "view_welcomestep")
    nobody = staff_client(django_user_model)

    assert viewer.post(reverse(ADD), form_data()).status_code == 403
    change = reverse("admin:sending_welcomestep_change", args=[step.pk])
    assert viewer.post(change, form_data(subject="Hijacked")).status_code == 403
    test_url = reverse("admin:sending_welcomestep_test", args=[step.pk])
    assert viewer.get(test_url).status_code == 403
    assert (
        viewer.post(
            test_url, {"emails": "staff1@example.org", "segment": "free"}
        ).status_code
        == 403
    )
    listing = reverse("admin:sending_welcomestep_changelist")
    viewer.post(listing, {"action": "activate", "_selected_action": [step.pk]})
    # The view permission previews, and sees no figures without the report's.
    preview = reverse("admin:sending_welcomestep_preview", args=[step.pk])
    assert viewer.get(preview).status_code == 200
    assert "opened (people)".upper() not in text(viewer.get(listing)).upper()
    for url in (preview, listing, change):
        assert nobody.get(url).status_code == 403

    step.refresh_from_db()
    assert step.issue.title == "Welcome" and not step.active
    assert WelcomeStep.objects.count() == 1
    assert not list(settings.EMAIL_OUTBOX_DIR.glob("*.eml"))


def test_the_add_form_offers_a_newsletter_on_a_site_that_has_none_yet(admin_client):
    Newsletter.objects.all().delete()
    page = text(admin_client.get(reverse(ADD)))
    newsletter = Newsletter.objects.get()
    assert re.search(rf'<option value="{newsletter.pk}" selected>', page)
