"""Choosing an issue's audience in the admin and from the command line: the
confirmation page counts exactly who gets it, the choice is checked and fixed once
sent, and segments show how many they match, to staff who may see them only."""

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from issues.models import Issue
from issues.sending import delivery, services
from issues.sending.models import Delivery, Send
from newsletter.models import Newsletter
from subscribers.billing.models import Membership
from subscribers.models import Label, Segment, Subscriber, Subscription
from subscribers.sessions import SESSION_KEY
from tests.factories.billing import MembershipFactory
from tests.factories.issues import IssueFactory, issue_admin_form
from tests.sending.conftest import make_subscribers

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


@pytest.fixture
def audience(db):
    """Ten readers: three paying, two labelled ml, one on a second newsletter only."""
    readers = make_subscribers(10)
    for subscriber in readers[:3]:
        MembershipFactory(subscriber=subscriber, status=Membership.Status.ACTIVE)
    ml = Label.objects.create(name="ml")
    for subscriber in readers[3:5]:
        subscriber.labels.add(ml)
    other = Newsletter.objects.create(
        name="Announcements", slug="announcements", join_by_default=False
    )
    Subscription.objects.filter(subscriber=readers[9]).delete()
    Subscription.join(
        Subscriber.objects.filter(pk=readers[9].pk).values("pk"),
        Newsletter.objects.filter(pk=other.pk).values("pk"),
    )
    segment = Segment.objects.create(name="ML readers")
    segment.labels.add(ml)
    return {"readers": readers, "segment": segment, "other": other}


def confirmation(client, issue) -> str:
    page = client.get(reverse("admin:sending_publish", args=[issue.pk]))
    assert page.status_code == 200
    return page.content.decode()


@pytest.mark.parametrize(
    ("chosen", "count"),
    [("all", 9), ("free", 6), ("paid", 3), ("segment", 2), ("email", 9)],
)
def test_the_confirmation_counts_exactly_who_the_freeze_takes(
    staff_client, audience, chosen, count
):
    segment = audience["segment"] if chosen == "segment" else None
    issue = IssueFactory(audience=chosen, segment=segment)
    page = confirmation(staff_client, issue)
    noun = "subscriber" if count == 1 else "subscribers"
    assert f'data-count="{count}">{count} {noun}<' in page
    assert f"Yes, publish and send to {count} {noun}" in page
    send = Send.objects.create(issue=issue)
    assert delivery.freeze_audience(send=send) == count


def test_the_confirmation_of_a_web_only_issue_says_nobody_is_emailed(
    staff_client, audience
):
    issue = IssueFactory(audience=Issue.Audience.WEB)
    page = confirmation(staff_client, issue)
    assert "Nobody is emailed" in page
    assert "Yes, publish on the site" in page
    response = staff_client.post(reverse("admin:sending_publish", args=[issue.pk]))
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED
    assert not Send.objects.filter(issue=issue).exists()


def test_the_form_requires_a_segment_exactly_for_the_segment_audience(
    staff_client, audience
):
    url = reverse("admin:issues_issue_add")
    missing = staff_client.post(url, issue_admin_form(audience="segment"))
    assert missing.status_code == 200
    assert "Choose the segment this issue is sent to." in missing.content.decode()
    stray = staff_client.post(
        url, issue_admin_form(audience="paid", segment=str(audience["segment"].pk))
    )
    assert stray.status_code == 200
    assert "A segment is used only with the audience" in stray.content.decode()
    assert not Issue.objects.exists()
    fine = staff_client.post(
        url, issue_admin_form(audience="segment", segment=str(audience["segment"].pk))
    )
    assert fine.status_code == 302
    issue = Issue.objects.get()
    assert (issue.audience, issue.segment) == ("segment", audience["segment"])


def test_the_audience_cannot_change_once_the_send_exists(staff_client, audience):
    issue = IssueFactory(audience=Issue.Audience.PAID, published=True)
    send = Send.objects.create(issue=issue)
    delivery.freeze_audience(send=send)
    url = reverse("admin:issues_issue_change", args=[issue.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="audience"' not in page
    data = issue_admin_form(
        title=issue.title, slug=issue.slug, body=issue.body, status="published",
        audience="all", newsletter=str(audience["other"].pk),
    )  # fmt: skip
    assert staff_client.post(url, data).status_code == 302
    issue.refresh_from_db()
    assert issue.audience == Issue.Audience.PAID
    assert issue.newsletter == Newsletter.default()
    with pytest.raises(services.SendingError):
        services.choose_audience(issue=issue, audience="all")
    assert Delivery.objects.filter(send=send).count() == 3


def test_the_send_panel_shows_the_audience(staff_client, audience):
    issue = IssueFactory(audience=Issue.Audience.SEGMENT, segment=audience["segment"])
    page = staff_client.get(reverse("admin:issues_issue_change", args=[issue.pk]))
    text = page.content.decode()
    assert "Audience: <strong>A segment</strong> (“ML readers”)" in text


def test_a_segments_page_shows_how_many_it_matches(staff_client, audience):
    segment = audience["segment"]
    page = staff_client.get(
        reverse("admin:subscribers_segment_change", args=[segment.pk])
    )
    assert page.status_code == 200
    assert 'data-count="2">2 subscribers</strong>' in page.content.decode()
    labels = staff_client.get(reverse("admin:subscribers_label_changelist"))
    assert labels.status_code == 200


@pytest.fixture
def strangers(client, django_user_model, audience):
    """Who may not touch segments: nobody signed in, a signed-in subscriber, and a
    staff member who may edit issues only."""
    subscriber = audience["readers"][0]
    session_client = type(client)()
    session = session_client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()
    staff = django_user_model.objects.create_user(
        "writer", "writer@example.org", "pw-for-tests-only", is_staff=True
    )
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["view_issue", "change_issue"])
    )
    staff_client = type(client)()
    staff_client.force_login(staff)
    return {
        "outsider": type(client)(),
        "subscriber": session_client,
        "staff": staff_client,
    }


@pytest.mark.parametrize("who", ["outsider", "subscriber", "staff"])
def test_strangers_cannot_see_or_change_segments_or_labels(strangers, audience, who):
    client = strangers[who]
    segment = audience["segment"]
    urls = [
        reverse("admin:subscribers_segment_change", args=[segment.pk]),
        reverse("admin:subscribers_segment_add"),
        reverse("admin:subscribers_label_add"),
        reverse("admin:subscribers_segment_delete", args=[segment.pk]),
    ]
    # Staff without the permission are refused; anyone else is sent to sign in.
    expected = 403 if who == "staff" else 302
    for url in urls:
        for response in (
            client.get(url),
            client.post(url, {"name": "Everyone", "membership": "", "post": "yes"}),
        ):
            assert response.status_code == expected
            if expected == 302:
                assert "/admin/login/" in response["Location"]
    assert list(Segment.objects.values_list("name", flat=True)) == ["ML readers"]
    assert list(Label.objects.values_list("name", flat=True)) == ["ml"]


def test_strangers_cannot_choose_an_issues_audience(strangers, audience):
    issue = IssueFactory(audience=Issue.Audience.PAID)
    url = reverse("admin:issues_issue_change", args=[issue.pk])
    for who in ("outsider", "subscriber"):
        response = strangers[who].post(url, issue_admin_form(audience="all"))
        assert response.status_code == 302 and "/login/" in response["Location"]
    issue.refresh_from_db()
    assert issue.audience == Issue.Audience.PAID


# --- the command line ---------------------------------------------------------


def test_publish_issue_with_an_audience_sends_to_it(audience, capsys):
    issue = IssueFactory(slug="for-paid")
    call_command("publish_issue", "for-paid", "--audience", "paid")
    issue.refresh_from_db()
    assert issue.audience == Issue.Audience.PAID
    send = Send.objects.get(issue=issue)
    assert delivery.freeze_audience(send=send) == 3
    assert "sending to 3 subscribers" in capsys.readouterr().out


def test_publish_issue_to_a_segment_by_name(audience):
    issue = IssueFactory(slug="for-ml")
    call_command("publish_issue", "for-ml", "--audience", "segment:ML readers")
    issue.refresh_from_db()
    assert (issue.audience, issue.segment) == ("segment", audience["segment"])
    assert delivery.freeze_audience(send=Send.objects.get(issue=issue)) == 2


def test_publish_issue_web_only_creates_no_send(audience, capsys):
    issue = IssueFactory(slug="web")
    call_command("publish_issue", "web", "--audience", "web")
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED
    assert not Send.objects.exists()
    assert "nobody was emailed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("segment:Nobody", "No segment named “Nobody”. Segments: ML readers."),
        ("segment:", "Name the segment"),
        ("everyone", "Unknown audience “everyone”"),
        ("paid:x", "Unknown audience “paid:x”"),
    ],
)
def test_publish_issue_refuses_an_unknown_audience(audience, value, message):
    issue = IssueFactory(slug="refused")
    with pytest.raises(CommandError, match=message):
        call_command("publish_issue", "refused", "--audience", value)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT
    assert issue.audience == Issue.Audience.ALL
    assert not Send.objects.exists()


def test_publish_issue_refuses_to_change_a_sent_audience(audience):
    issue = IssueFactory(slug="sent", published=True)
    Send.objects.create(issue=issue)
    with pytest.raises(CommandError, match="its audience cannot change"):
        call_command("publish_issue", "sent", "--audience", "paid")
    issue.refresh_from_db()
    assert issue.audience == Issue.Audience.ALL


def test_the_issue_report_says_who_it_was_sent_to(staff_client, audience):
    issue = IssueFactory(
        audience=Issue.Audience.SEGMENT, segment=audience["segment"], published=True
    )
    send = Send.objects.create(issue=issue)
    delivery.freeze_audience(send=send)
    page = staff_client.get(reverse("admin:analytics_report", args=[issue.pk]))
    assert page.status_code == 200
    assert "Sent to: <strong>A segment</strong> (“ML readers”)" in page.content.decode()


def test_a_scheduled_web_only_issue_is_published_by_beat_and_emails_nobody(audience):
    issue = IssueFactory(audience=Issue.Audience.WEB, scheduled=True)
    Issue.objects.filter(pk=issue.pk).update(publish_at=timezone.now())
    assert services.publish_due_issues() == []
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PUBLISHED
    assert not Send.objects.exists()
