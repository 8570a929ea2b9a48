"""An issue citing a paper Quire does not know is refused by every way of publishing.

The admin's Publish now and Schedule pages, the issue form's status field, beat's
scheduled publishing and `manage.py publish_issue` all give the service's one
message; readers never see an error box.
"""

import logging
from datetime import timedelta
from html import unescape
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from issues.models import Issue, Paper, unknown_references_message
from issues.sending import jobs, services
from issues.sending.models import Send
from issues.services import delete_papers, rerender_citing_issues
from tests.conftest import wait_for
from tests.factories.issues import IssueFactory, PaperFactory
from tests.sending.conftest import make_subscribers

pytestmark = pytest.mark.django_db

BODY = "Read [[arxiv:2303.08774]] and [[doi:10.1/missing]] today."
UNKNOWN = ["[[arxiv:2303.08774]]", "[[doi:10.1/missing]]"]
MESSAGE = unknown_references_message(UNKNOWN)


@pytest.fixture
def broken(db) -> Issue:
    return IssueFactory(title="GPT-4 notes", slug="gpt-4-notes", body=BODY)


def page_text(response) -> str:
    return unescape(response.content.decode())


def change_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_change", args=[issue.pk])


def assert_not_published(issue: Issue, status=Issue.Status.DRAFT) -> None:
    issue.refresh_from_db()
    assert issue.status == status
    assert not Send.objects.filter(issue=issue).exists()


def issue_form(issue: Issue, **overrides) -> dict:
    data = {
        "title": issue.title, "slug": issue.slug, "subtitle": "", "body": issue.body,
        "status": issue.status, "access": "free",
        "newsletter": str(issue.newsletter_id), "audience": issue.audience,
        "citations-TOTAL_FORMS": "0", "citations-INITIAL_FORMS": "0",
        "citations-MIN_NUM_FORMS": "0", "citations-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_the_message_names_each_unknown_reference_and_the_fix():
    assert MESSAGE.startswith(
        "These references name no paper yet: [[arxiv:2303.08774]], "
        "[[doi:10.1/missing]]. Add each paper under Papers"
    )


def test_the_services_refuse_with_the_one_message(broken):
    with pytest.raises(services.UnknownReferencesError) as publishing:
        services.publish_issue(issue=broken)
    with pytest.raises(services.UnknownReferencesError) as scheduling:
        services.schedule_issue(
            issue=broken, publish_at=timezone.now() + timedelta(days=1)
        )
    assert str(publishing.value) == str(scheduling.value) == MESSAGE
    assert isinstance(publishing.value, services.SendingError)
    assert_not_published(broken)


def test_publish_now_says_why_offers_the_fix_and_sends_nothing(
    author_client, broken, smtp_settings, django_capture_on_commit_callbacks
):
    make_subscribers(3)
    url = reverse("admin:sending_publish", args=[broken.pk])

    page = page_text(author_client.get(url))

    assert MESSAGE in page
    assert "Yes, publish and send" not in page
    assert f'href="{change_url(broken)}#id_body">Edit the issue</a>' in page
    assert "/admin/issues/paper/add/?arxiv_id=2303.08774" in page
    assert "/admin/issues/paper/add/?doi=10.1%2Fmissing" in page

    # A page opened before the paper was deleted still posts: refused the same way.
    with django_capture_on_commit_callbacks(execute=True):
        response = author_client.post(url)
    assert response.status_code == 200
    assert MESSAGE in page_text(response)
    assert "Yes, publish and send" not in page_text(response)
    assert_not_published(broken)
    assert smtp_settings.messages == []


def test_schedule_says_why_and_offers_no_schedule_button(author_client, broken):
    url = reverse("admin:sending_schedule", args=[broken.pk])

    page = page_text(author_client.get(url))
    assert MESSAGE in page
    assert "Schedule for" not in page and 'name="publish_at_0"' not in page

    response = author_client.post(
        url, {"publish_at_0": "2099-01-02", "publish_at_1": "09:30:00"}
    )
    assert response.status_code == 200
    assert MESSAGE in page_text(response)
    assert_not_published(broken)


def test_the_status_field_refuses_with_the_same_message(author_client, broken):
    for status in ("published", "scheduled"):
        response = author_client.post(
            change_url(broken),
            issue_form(
                broken,
                status=status,
                publish_at_0="2099-01-02",
                publish_at_1="09:30:00",
            ),
        )
        assert response.status_code == 200, status
        assert MESSAGE in page_text(response), status
        assert_not_published(broken)


def test_the_command_exits_with_the_message(broken, smtp_settings):
    make_subscribers(2)
    with pytest.raises(CommandError) as caught:
        call_command("publish_issue", broken.slug, stdout=StringIO())
    assert str(caught.value) == MESSAGE
    assert_not_published(broken)
    assert smtp_settings.messages == []


def test_adding_the_papers_lets_it_publish(
    broken, smtp_settings, django_capture_on_commit_callbacks
):
    make_subscribers(2)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        # As the admin does when a paper is added.
        for paper in (
            PaperFactory(arxiv_id="2303.08774", title="GPT-4 Technical Report"),
            PaperFactory(arxiv_id="", doi="10.1/missing", title="The missing one"),
        ):
            rerender_citing_issues(paper=paper)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("publish_issue", broken.slug, stdout=out)
    assert "sending to 2 subscribers" in out.getvalue()
    assert sorted(smtp_settings.recipients()) == [
        "reader0@example.org",
        "reader1@example.org",
    ]
    html = smtp_settings.messages[0].message.get_body(("html",)).get_content()
    assert "GPT-4 Technical Report" in html and "[[arxiv:" not in html


# --- beat -----------------------------------------------------------------------------


def schedule_then_lose_the_paper(capture, *, title: str, publish_at) -> Issue:
    """Schedule an issue that was fine, then delete the paper it cites.

    capture: django_capture_on_commit_callbacks, to run what the deletion's commit
    queues. The paper is deleted as the admin does it (issues.services.delete_papers,
    which re-renders the issues that cited it).
    """
    PaperFactory(arxiv_id="2303.08774", title="GPT-4 Technical Report")
    issue = IssueFactory(title=title, body="Read [[arxiv:2303.08774]].")
    services.schedule_issue(issue=issue, publish_at=publish_at)
    with capture(execute=True):
        delete_papers(papers=Paper.objects.filter(arxiv_id="2303.08774"))
    return issue


def test_beat_keeps_a_broken_issue_scheduled_flags_it_and_sends_the_others(
    smtp_settings, caplog, django_capture_on_commit_callbacks
):
    make_subscribers(2)
    now = timezone.now()
    broken = schedule_then_lose_the_paper(
        django_capture_on_commit_callbacks,
        title="Broken one",
        publish_at=now - timedelta(minutes=2),
    )
    fine = IssueFactory(title="Fine one")
    services.schedule_issue(issue=fine, publish_at=now - timedelta(minutes=1))

    with (
        caplog.at_level(logging.WARNING, logger="issues.sending.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        sends = services.publish_due_issues(now=now)
        # Beat's next runs, 30 seconds apart: tried again, not logged again.
        services.publish_due_issues(now=now + timedelta(seconds=30))
        services.publish_due_issues(now=now + timedelta(seconds=60))

    assert [send.issue_id for send in sends] == [fine.pk]
    assert {m.message["Subject"] for m in smtp_settings.messages} == {"Fine one"}
    assert sorted(smtp_settings.recipients()) == [
        "reader0@example.org",
        "reader1@example.org",
    ]
    broken.refresh_from_db()
    assert broken.status == Issue.Status.SCHEDULED
    assert broken.publish_error == unknown_references_message(["[[arxiv:2303.08774]]"])
    assert broken.publish_error_at == now
    assert not Send.objects.filter(issue=broken).exists()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Broken one" in warnings[0].getMessage()


def test_a_flagged_issue_shows_why_on_its_page_and_in_the_list(
    author_client, django_capture_on_commit_callbacks
):
    broken = schedule_then_lose_the_paper(
        django_capture_on_commit_callbacks,
        title="Broken one",
        publish_at=timezone.now() - timedelta(minutes=1),
    )
    services.publish_due_issues()

    page = page_text(author_client.get(change_url(broken)))
    top = page[: page.index('name="title"')]
    assert "Not published at its scheduled time" in top
    assert unknown_references_message(["[[arxiv:2303.08774]]"]) in top
    assert "1 unknown reference" in top

    listing = page_text(author_client.get(reverse("admin:issues_issue_changelist")))
    assert "Not published at its time" in listing
    assert "1 unknown reference" in listing


def test_once_the_paper_exists_beat_publishes_it_and_clears_the_flag(
    django_capture_on_commit_callbacks,
):
    make_subscribers(1)
    broken = schedule_then_lose_the_paper(
        django_capture_on_commit_callbacks,
        title="Broken one",
        publish_at=timezone.now() - timedelta(minutes=1),
    )
    services.publish_due_issues()
    with django_capture_on_commit_callbacks(execute=True):
        rerender_citing_issues(
            paper=PaperFactory(arxiv_id="2303.08774", title="Back again")
        )
        [send] = services.publish_due_issues()
    broken.refresh_from_db()
    assert send.issue_id == broken.pk
    assert broken.status == Issue.Status.PUBLISHED
    assert (broken.publish_error, broken.publish_error_at) == ("", None)


def test_saving_the_issue_clears_the_flag(
    author_client, django_capture_on_commit_callbacks
):
    broken = schedule_then_lose_the_paper(
        django_capture_on_commit_callbacks,
        title="Broken one",
        publish_at=timezone.now() - timedelta(minutes=1),
    )
    services.publish_due_issues()
    response = author_client.post(
        change_url(broken), issue_form(broken, status="draft")
    )
    assert response.status_code == 302
    broken.refresh_from_db()
    assert broken.status == Issue.Status.DRAFT
    assert (broken.publish_error, broken.publish_error_at) == ("", None)
    assert "Not published at its" not in page_text(
        author_client.get(change_url(broken))
    )


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_beats_task_past_a_broken_issue(
    celery_worker_factory, smtp_server, django_capture_on_commit_callbacks
):
    from tests.sending.test_worker import wait_until_done, worker_env

    subscribers = make_subscribers(20)
    now = timezone.now()
    broken = schedule_then_lose_the_paper(
        django_capture_on_commit_callbacks,
        title="Broken one",
        publish_at=now - timedelta(minutes=2),
    )
    fine = IssueFactory(title="Fine one")
    services.schedule_issue(issue=fine, publish_at=now - timedelta(minutes=1))
    celery_worker_factory(extra_env=worker_env(smtp_server))

    jobs.publish_due_issues.delay()

    send = wait_for(
        lambda: Send.objects.filter(issue=fine).first(),
        timeout=60,
        message="the fine issue's send",
    )
    wait_until_done(send)
    broken.refresh_from_db()
    assert broken.status == Issue.Status.SCHEDULED and broken.publish_error
    assert sorted(smtp_server.recipients()) == sorted(s.email for s in subscribers)
    assert {m.message["Subject"] for m in smtp_server.messages} == {"Fine one"}
    assert not Send.objects.filter(issue=broken).exists()


# --- what the author and readers see --------------------------------------------------


def test_a_draft_with_unknown_references_says_so_in_the_list_and_on_its_page(
    author_client, broken
):
    listing = page_text(author_client.get(reverse("admin:issues_issue_changelist")))
    assert '<span title="[[arxiv:2303.08774]], [[doi:10.1/missing]]">' in listing
    assert "2 unknown references" in listing

    page = page_text(author_client.get(change_url(broken)))
    top = page[: page.index('name="title"')]
    assert "2 unknown references</strong>" in top
    assert "cannot be published or scheduled until each names a paper" in top
    assert "<code>[[arxiv:2303.08774]]</code>" in top
    assert "/admin/issues/paper/add/?arxiv_id=2303.08774" in top


def test_the_issue_list_reads_no_more_for_more_flagged_issues(author_client):
    url = reverse("admin:issues_issue_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert author_client.get(url).status_code == 200
        return len(captured)

    IssueFactory(body=BODY)
    before = queries()
    for _ in range(5):
        IssueFactory(body=BODY)
    assert queries() == before


def test_readers_get_plain_text_for_a_paper_deleted_after_publishing(
    client, django_capture_on_commit_callbacks
):
    PaperFactory(arxiv_id="2303.08774", title="GPT-4 Technical Report")
    issue = IssueFactory(
        title="Published one", body="Intro.\n\n[[arxiv:2303.08774]]", published=True
    )
    with django_capture_on_commit_callbacks(execute=True):
        delete_papers(papers=Paper.objects.filter(arxiv_id="2303.08774"))

    for url in (issue.get_absolute_url(), reverse("issues:feed_rss")):
        text = client.get(url).content.decode()
        assert "arXiv:2303.08774" in text, url
        assert "paper-ref" not in text, url
        assert "Unknown paper reference" not in text, url


@pytest.fixture
def too_deep():
    """An issue whose body is over the nesting limit, saved past the form."""
    issue = IssueFactory(title="Too deep")
    Issue.objects.filter(pk=issue.pk).update(body="> " * 500 + "deep")
    issue.refresh_from_db()
    return issue


def test_a_body_over_the_limits_is_refused_by_every_way_of_publishing(too_deep):
    with pytest.raises(services.ContentTooLargeError) as publishing:
        services.publish_issue(issue=too_deep)
    with pytest.raises(services.ContentTooLargeError):
        services.schedule_issue(
            issue=too_deep, publish_at=timezone.now() + timedelta(days=1)
        )
    with pytest.raises(CommandError) as command:
        call_command("publish_issue", too_deep.slug, stdout=StringIO())

    assert "levels deep" in str(publishing.value)
    assert str(command.value) == str(publishing.value)
    assert_not_published(too_deep)


def test_publish_now_shows_the_limit_and_sends_nothing(
    author_client, too_deep, smtp_settings, django_capture_on_commit_callbacks
):
    make_subscribers(2)
    url = reverse("admin:sending_publish", args=[too_deep.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = author_client.post(url)

    assert "levels deep" in page_text(response)
    assert "Yes, publish and send" not in page_text(response)
    assert_not_published(too_deep)
    assert smtp_settings.messages == []
