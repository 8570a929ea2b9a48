"""Unpublishing, publishing again and cancelling a schedule, from the issue's page."""

from datetime import timedelta
from html import unescape
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from issues.models import Issue
from issues.sending import delivery, services
from issues.sending.models import Delivery, Send
from subscribers.sessions import SESSION_KEY
from tests.conftest import enqueued
from tests.factories.issues import IssueFactory, PaperFactory, TagFactory
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(django_user_model):
    """A staff member who may look at issues but not change them."""
    viewer = django_user_model.objects.create_user(
        "viewer", "viewer@example.org", "pw-for-tests-only", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_issue"))
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def subscriber_client():
    """A reader signed in with a magic link (a subscriber, not a staff user)."""
    [subscriber] = make_subscribers(1, start=900)
    client = Client()
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    return client


def text(response) -> str:
    return unescape(response.content.decode())


def change_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_change", args=[issue.pk])


@pytest.fixture
def sent(author_client, smtp_settings, django_capture_on_commit_callbacks) -> Issue:
    """An issue published from the admin and emailed to three subscribers."""
    make_subscribers(3)
    paper = PaperFactory(title="Tulu, considered")
    issue = IssueFactory(
        title="Instruction tuning roundup",
        slug="instruction-tuning-roundup",
        body=f"Words about tuning.\n\n[[arxiv:{paper.arxiv_id}]]",
        tags=[TagFactory(name="LLM", slug="llm")],
    )
    with django_capture_on_commit_callbacks(execute=True):
        author_client.post(reverse("admin:sending_publish", args=[issue.pk]))
    assert len(smtp_settings.messages) == 3
    issue.refresh_from_db()
    return issue


def reader_pages(issue: Issue) -> list[str]:
    paper = issue.papers.get()
    return [
        "/",
        reverse("issues:archive"),
        reverse("issues:tag", args=["llm"]),
        reverse("issues:paper", args=[paper.slug]),
        reverse("issues:search") + "?q=tuning",
        reverse("issues:feed_rss"),
        reverse("issues:feed_atom"),
        "/sitemap.xml",
    ]


def test_unpublishing_takes_it_off_every_reader_page_and_keeps_its_history(
    author_client, sent, smtp_settings, django_capture_on_commit_callbacks
):
    client = Client()  # an anonymous reader; its issue page is cached at once
    for url in reader_pages(sent):
        assert sent.slug in client.get(url).content.decode(), url
    assert client.get(sent.get_absolute_url()).status_code == 200
    url = reverse("admin:sending_unpublish", args=[sent.pk])

    page = text(author_client.get(url))
    assert "goes off the site at once" in page
    assert "Its email history stays as it is (3 of 3 sent)" in page
    sent.refresh_from_db()
    assert sent.status == Issue.Status.PUBLISHED  # the GET changed nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = author_client.post(url)

    assert response.status_code == 302
    sent.refresh_from_db()
    assert sent.status == Issue.Status.UNPUBLISHED
    assert client.get(sent.get_absolute_url()).status_code == 404
    for url in reader_pages(sent):
        assert sent.slug not in client.get(url).content.decode(), url
        assert sent.title not in client.get(url).content.decode(), url
    send = Send.objects.get(issue=sent)
    assert send.sent_count == 3
    assert Delivery.objects.filter(send=send, status="sent").count() == 3
    # The author sees it for what it is, and how to bring it back.
    page = text(author_client.get(change_url(sent)))
    assert "is off the site" in page
    assert "Publish again…" in page and "Unpublish…" not in page
    assert "Publish now…" not in page
    archive = text(author_client.get(reverse("issues:archive")))
    assert '<span class="badge badge-draft">Unpublished</span>' in archive
    assert len(smtp_settings.messages) == 3


def test_publishing_again_puts_it_back_and_emails_nobody(
    author_client, sent, smtp_settings, django_capture_on_commit_callbacks
):
    client = Client()  # an anonymous reader
    with django_capture_on_commit_callbacks(execute=True):
        services.unpublish_issue(issue=sent)
    assert client.get(sent.get_absolute_url()).status_code == 404
    url = reverse("admin:sending_publish", args=[sent.pk])

    page = text(author_client.get(url))
    assert "Nobody is emailed" in page
    assert "it was emailed to 3 subscribers when it was first published" in page
    assert "Yes, put it back on the site" in page

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = author_client.post(url)

    assert response.status_code == 302
    assert enqueued(callbacks) == []  # no send was started
    assert "Nobody was emailed again" in text(author_client.get(change_url(sent)))
    sent.refresh_from_db()
    assert sent.status == Issue.Status.PUBLISHED
    assert client.get(sent.get_absolute_url()).status_code == 200
    assert Send.objects.filter(issue=sent).count() == 1
    assert len(smtp_settings.messages) == 3
    assert sorted(smtp_settings.recipients()) == [
        f"reader{n}@example.org" for n in range(3)
    ]


def test_the_command_puts_an_unpublished_issue_back_without_emailing(
    sent, smtp_settings, django_capture_on_commit_callbacks
):
    services.unpublish_issue(issue=sent)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        call_command("publish_issue", sent.slug, stdout=out)
    assert "back on the site. Nobody was emailed again." in out.getvalue()
    assert enqueued(callbacks) == []
    assert len(smtp_settings.messages) == 3
    sent.refresh_from_db()
    assert sent.status == Issue.Status.PUBLISHED


def test_an_issue_never_emailed_is_not_emailed_when_published_again(
    author_client, smtp_settings, django_capture_on_commit_callbacks
):
    # Demo content is published without a send; unpublishing and publishing it
    # again must not turn into its first email.
    make_subscribers(2)
    issue = IssueFactory(published=True)
    author_client.post(reverse("admin:sending_unpublish", args=[issue.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        author_client.post(reverse("admin:sending_publish", args=[issue.pk]))
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED
    assert not Send.objects.filter(issue=issue).exists()
    assert smtp_settings.messages == []


def test_unpublishing_pauses_a_send_still_going_out(author_client):
    make_subscribers(3)
    issue = IssueFactory()
    send = services.publish_issue(issue=issue)
    delivery.freeze_audience(send=send)
    page = text(author_client.get(reverse("admin:sending_unpublish", args=[issue.pk])))
    assert "Its email is still going out" in page

    author_client.post(reverse("admin:sending_unpublish", args=[issue.pk]))

    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    assert Delivery.objects.filter(send=send, status="queued").count() == 3


def test_an_unpublished_issue_cannot_be_scheduled_or_moved_by_the_status_field(
    author_client, sent
):
    services.unpublish_issue(issue=sent)
    with pytest.raises(services.SendingError):
        services.schedule_issue(
            issue=sent, publish_at=timezone.now() + timedelta(days=1)
        )
    page = text(author_client.get(reverse("admin:sending_schedule", args=[sent.pk])))
    assert "Use “Publish again…”" in page and "Schedule for" not in page
    form = {
        "title": sent.title, "slug": sent.slug, "subtitle": "", "body": sent.body,
        "access": "free", "citations-TOTAL_FORMS": "0",
        "citations-INITIAL_FORMS": "0", "citations-MIN_NUM_FORMS": "0",
        "citations-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    for status in ("draft", "published"):
        response = author_client.post(change_url(sent), {**form, "status": status})
        assert response.status_code == 200
        assert "use “Publish again…” in the Email panel" in text(response)
        sent.refresh_from_db()
        assert sent.status == Issue.Status.UNPUBLISHED
    # Its text can still be edited while it is off the site.
    response = author_client.post(
        change_url(sent), {**form, "status": "unpublished", "subtitle": "Fixed"}
    )
    assert response.status_code == 302
    sent.refresh_from_db()
    assert (sent.status, sent.subtitle) == (Issue.Status.UNPUBLISHED, "Fixed")
    draft = IssueFactory()
    response = author_client.post(
        change_url(draft),
        {**form, "title": draft.title, "slug": draft.slug, "status": "unpublished"},
    )
    assert response.status_code == 200
    assert '<option value="unpublished"' not in text(response)
    draft.refresh_from_db()
    assert draft.status == Issue.Status.DRAFT


def test_cancelling_a_schedule_makes_it_a_draft_that_beat_leaves_alone(
    author_client, django_capture_on_commit_callbacks
):
    make_subscribers(2)
    issue = IssueFactory(title="Next month")
    when = timezone.now() + timedelta(hours=2)
    services.schedule_issue(issue=issue, publish_at=when)
    assert "Cancel schedule…" in text(author_client.get(change_url(issue)))
    url = reverse("admin:sending_unschedule", args=[issue.pk])

    page = text(author_client.get(url))
    assert "Cancelling turns it back into a draft" in page
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SCHEDULED

    response = author_client.post(url)

    assert response.status_code == 302
    assert "is a draft again" in text(author_client.get(change_url(issue)))
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT
    with django_capture_on_commit_callbacks(execute=True):
        assert services.publish_due_issues(now=when + timedelta(minutes=1)) == []
    assert not Send.objects.exists()
    # A second tab's cancel, now that it is a draft, says so and changes nothing.
    author_client.post(url)
    assert "not scheduled" in text(author_client.get(change_url(issue)))


@pytest.mark.parametrize("action", ["unpublish", "unschedule"])
def test_only_staff_who_may_change_issues_can_unpublish_or_cancel(
    action, viewer_client, subscriber_client
):
    issue = IssueFactory(published=True) if action == "unpublish" else IssueFactory()
    if action == "unschedule":
        services.schedule_issue(
            issue=issue, publish_at=timezone.now() + timedelta(days=1)
        )
    issue.refresh_from_db()
    before = issue.status
    url = reverse(f"admin:sending_{action}", args=[issue.pk])

    assert viewer_client.get(url).status_code == 403
    assert viewer_client.post(url).status_code == 403
    for outsider in (Client(), subscriber_client):
        response = outsider.post(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    issue.refresh_from_db()
    assert issue.status == before


def test_the_pages_change_nothing_on_other_methods(author_client):
    issue = IssueFactory(published=True)
    url = reverse("admin:sending_unpublish", args=[issue.pk])
    assert author_client.put(url).status_code == 405
    assert author_client.delete(url).status_code == 405
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED
